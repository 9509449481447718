// QR login waiting page: reload every few seconds so the server can log
// this browser in once another device scanned the code. No inline script
// (the CSP forbids it); the page marks itself with data-poll.
(function () {
  var el = document.querySelector('[data-poll]');
  if (!el) { return; }
  var seconds = parseInt(el.getAttribute('data-poll'), 10) || 5;
  window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
})();
