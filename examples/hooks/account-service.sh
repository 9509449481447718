#!/bin/sh
# Example ACCOUNT_SERVICE_HOOK for flexiapi.
#
# flexiapi runs this program after an account change is saved, in the
# background, with the event as the first argument
#   created | edited | activated | destroyed
# and the account as JSON on stdin (no password hashes, tokens or keys):
#   {"id":1,"username":"bob","domain":"sip.example.org","sip":"bob@sip.example.org",
#    "email":...,"phone":...,"display_name":...,"activated":true,"admin":false,...}
# Its output is ignored; a failure or a run longer than HOOK_TIMEOUT_MS is
# logged and never affects the API answer. The environment is reduced to
# PATH, LANG, TZ, FLEXIAPI_APP_URL and FLEXIAPI_SIP_DOMAIN.
#
# This one appends one line per event to a log file; replace it with the
# call to your own system (a curl to a CRM, an LDAP update...).
set -eu

log=/var/log/flexiapi/account-events.log
event=${1:-unknown}
account=$(cat)
printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$event" "$account" >>"$log"
