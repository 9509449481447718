#!/bin/sh
# Example ACCOUNT_PROVISIONING_HOOK for flexiapi.
#
# flexiapi runs this program for every provisioning document (/provisioning,
# /provisioning/{token}, /provisioning/auth_token/{token}, /provisioning/me)
# with one JSON object on stdin:
#
#   {"account": {"id":1,"username":"bob","domain":"sip.example.org",...} or null,
#    "query": {"reset_password":"1", ...},
#    "proxy_section": "proxy_0" or null,
#    "auth_info_sections": ["auth_info_0", ...]}
#
# and merges the <section> elements it prints into the document: a section
# that already exists (e.g. proxy_0) receives the entries, replacing entries
# of the same name; a new one is appended. Exit 0 to be applied; a non-zero
# exit, invalid XML or a run longer than HOOK_TIMEOUT_MS is logged and ignored.
# The environment is reduced to PATH, LANG, TZ, FLEXIAPI_APP_URL and
# FLEXIAPI_SIP_DOMAIN. Values printed must be XML-escaped (& < >).
#
# This one gives every client a STUN/ICE NAT policy and, when an account is
# provisioned, turns push notifications on for it.
set -eu

input=$(cat)
domain=${FLEXIAPI_SIP_DOMAIN:-localhost}

cat <<XML
<section name="net">
  <entry name="nat_policy_ref">flexiapi_nat</entry>
</section>
<section name="nat_policy_0">
  <entry name="ref">flexiapi_nat</entry>
  <entry name="stun_server">stun.${domain}</entry>
  <entry name="protocols">stun,ice</entry>
</section>
XML

# No JSON tool is assumed: "account":null means a public document.
case $input in
*'"account":null'*) ;;
*)
    cat <<XML
<section name="proxy_0">
  <entry name="push_notification" overwrite="true">1</entry>
  <entry name="nat_policy_ref">flexiapi_nat</entry>
</section>
XML
    ;;
esac
