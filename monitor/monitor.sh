#!/usr/bin/env bash
# One-pass check of the Konnichiwa service for a box with only bash, curl and jq: the same checks,
# thresholds, lines and exit codes as `monitor check` (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; the
# worst state wins, CRITICAL > UNKNOWN > WARNING > OK). Its output is byte for byte the binary's
# (monitor/tests/check.rs compares them on every state), apart from the measured latency.
#
# Output, as a Nagios plugin: a first line with the worst state, the reasons of the checks in that
# state and all performance data after `|`; then one line per check.
#
# Environment: API_URL (required), API_KEY (for /inspect; both may come from .env in the working
# directory), CPU_WARNING/CPU_CRITICAL, MEMORY_WARNING/MEMORY_CRITICAL (percent; default 70/90),
# LATENCY_WARNING/LATENCY_CRITICAL (seconds; default 0.5/2), TIMEOUT (seconds; default 5),
# SEND_KEY_OVER_HTTP=1 (send the key over plain http:// to another machine: refused otherwise); for
# https URLs CERTIFICATE_WARNING_DAYS/CERTIFICATE_CRITICAL_DAYS (default 21/7) and CA_CERT (a PEM
# file of a private CA; curl then trusts only it, openssl adds it to the system's roots).
set -uo pipefail

usage() {
  cat <<'USAGE'
Usage: monitor.sh [--url|-H URL] [-h|--help]
One check of the Konnichiwa service, as `monitor check` makes it (Nagios output; exit 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN). --url (or -H) names the service, HOST[:PORT] meaning
http://HOST[:PORT]; else API_URL, else .env's.
Thresholds and the rest come from the environment: API_KEY, CPU_WARNING/CPU_CRITICAL,
MEMORY_WARNING/MEMORY_CRITICAL, LATENCY_WARNING/LATENCY_CRITICAL, TIMEOUT, SEND_KEY_OVER_HTTP=1,
CERTIFICATE_WARNING_DAYS/CERTIFICATE_CRITICAL_DAYS, CA_CERT.
USAGE
}
# Arguments: --url/-H URL (as `monitor check --url`), -h/--help; anything else is a usage error,
# reported as a plugin's UNKNOWN line (never a silent check of something else).
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --url|-H)
      [ $# -ge 2 ] || { echo "UNKNOWN - $1 needs a URL: monitor.sh --url http://127.0.0.1:4000"; exit 3; }
      API_URL=$2; shift 2 ;;
    --url=*) API_URL=${1#--url=}; shift ;;
    *) echo "UNKNOWN - unknown argument $1: monitor.sh [--url URL] (thresholds come from the environment; --help lists them)"; exit 3 ;;
  esac
done

from_env_file() { [ -f .env ] && sed -n "s/^$1=//p" .env | tail -n 1; }
[ -n "${API_KEY:-}" ] || API_KEY=$(from_env_file API_KEY)
[ -n "${API_URL:-}" ] || API_URL=$(from_env_file API_URL)

# Numbers as the binary prints them: at most three decimals, no trailing zeros.
num() { awk -v v="$1" 'BEGIN { s = sprintf("%.3f", v); sub(/0+$/, "", s); sub(/\.$/, "", s); print s }'; }
# A percentage with the digits that tell it from the thresholds: 82, 4.5, 0.45 (the monitor's figure()).
pct() {
  awk -v v="$1" 'function r(x, d) { return (x >= 0 ? int(x * d + 0.5) : -int(-x * d + 0.5)) / d }
    BEGIN { a = v < 0 ? -v : v
      if (a >= 10) { printf "%.0f\n", v; exit }
      s = sprintf("%.3f", a >= 1 ? r(v, 10) : r(v, 100)); sub(/0+$/, "", s); sub(/\.$/, "", s); print s }'
}
cpu_warning=$(num "${CPU_WARNING:-70}"); cpu_critical=$(num "${CPU_CRITICAL:-90}")
memory_warning=$(num "${MEMORY_WARNING:-70}"); memory_critical=$(num "${MEMORY_CRITICAL:-90}")
latency_warning=$(num "${LATENCY_WARNING:-0.5}"); latency_critical=$(num "${LATENCY_CRITICAL:-2}")
timeout=$(num "${TIMEOUT:-5}")
certificate_warning=${CERTIFICATE_WARNING_DAYS:-21}; certificate_critical=${CERTIFICATE_CRITICAL_DAYS:-7}
tls=(); [ -n "${CA_CERT:-}" ] && tls=(--cacert "$CA_CERT")

states=(); checks=(); reasons=(); perfs=()
report() { # state check reason [perfdata]
  states+=("$1"); checks+=("$2"); reasons+=("$3"); perfs+=("${4:-}")
}
severity() { case $1 in 0) echo 0;; 1) echo 1;; 3) echo 2;; 2) echo 3;; esac; }
finish() { # prints the plugin output and exits with the worst state
  local labels=(OK WARNING CRITICAL UNKNOWN) worst=0 i summary="" perf="" item
  for i in "${!states[@]}"; do
    if [ "$(severity "${states[$i]}")" -gt "$(severity "$worst")" ]; then worst=${states[$i]}; fi
  done
  for i in "${!states[@]}"; do
    if [ "${states[$i]}" = "$worst" ]; then
      item="${reasons[$i]}"
      case "$(printf '%s' "$item" | tr '[:upper:]' '[:lower:]')" in
        "${checks[$i]}"*) ;;
        *) item="${checks[$i]}: $item" ;;
      esac
      summary="${summary:+$summary; }$item"
    fi
    [ -n "${perfs[$i]}" ] && perf="${perf:+$perf }${perfs[$i]}"
  done
  if [ -n "$perf" ]; then echo "${labels[$worst]} - $summary | $perf"; else echo "${labels[$worst]} - $summary"; fi
  for i in "${!states[@]}"; do echo "${labels[${states[$i]}]}: ${checks[$i]} - ${reasons[$i]}"; done
  exit "$worst"
}
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
judge() { # value warning critical -> state (strictly above, as the reason says)
  if gt "$1" "$3"; then echo 2; elif gt "$1" "$2"; then echo 1; else echo 0; fi
}

for tool in curl jq awk; do
  command -v "$tool" >/dev/null || { report 3 config "$tool is not installed"; finish; }
done
inverted() { report 3 config "$1 warning $2 is above its critical $3: warning must not exceed critical"; finish; }
gt "$cpu_warning" "$cpu_critical" && inverted CPU "$cpu_warning%" "$cpu_critical%"
gt "$memory_warning" "$memory_critical" && inverted memory "$memory_warning%" "$memory_critical%"
gt "$latency_warning" "$latency_critical" && inverted latency "${latency_warning}s" "${latency_critical}s"
if [ "$certificate_warning" -lt "$certificate_critical" ]; then
  report 3 config "certificate warning at $certificate_warning days is below its critical at $certificate_critical days: the warning must come first"
  finish
fi
base=${API_URL%/}
if [ -z "$base" ]; then
  report 3 config "no service URL: pass --url or set API_URL (e.g. API_URL=http://127.0.0.1:4000)"; finish
fi
# HOST[:PORT], as Nagios plugins take a host (-H), is http://HOST[:PORT].
case $base in *://*) ;; *) base="http://$base" ;; esac
case $base in
  http://* | https://*) ;;
  *) report 3 config "the URL \"$base\" must start with http:// or https://"; finish ;;
esac
# The key goes over HTTPS anywhere, and over plain HTTP only to this machine (as the binary).
is_loopback() { # URL -> 0 when its host is localhost, 127.0.0.0/8 or ::1
  local a=${1#*://}; a=${a%%[/?#]*}; a=${a##*@}
  case $a in \[*) a=${a#\[}; a=${a%%]*};; *) a=${a%:*};; esac
  case $(printf '%s' "$a" | tr '[:upper:]' '[:lower:]') in
    localhost | ::1 | 0:0:0:0:0:0:0:1) return 0 ;;
  esac
  [[ $a =~ ^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] &&
    [ "${BASH_REMATCH[1]}" -le 255 ] && [ "${BASH_REMATCH[2]}" -le 255 ] && [ "${BASH_REMATCH[3]}" -le 255 ]
}
case $(printf '%s' "${SEND_KEY_OVER_HTTP:-}" | tr '[:upper:]' '[:lower:]') in
  "" | 0 | false | no | off | n | f) insist=0 ;;
  *) insist=1 ;;
esac
if [ -n "${API_KEY:-}" ] && [ "$insist" = 0 ] && [ "$(printf '%s' "${base:0:7}" | tr '[:upper:]' '[:lower:]')" = "http://" ] &&
  ! is_loopback "$base"; then
  report 3 config "refusing to send the API key to $base over plain HTTP: anyone on the way could read it. Use the service's https:// URL (stack.yaml load_balancer.https), leave /inspect and /metrics out (no key is sent then), or pass --send-key-over-http (or set SEND_KEY_OVER_HTTP=1) to send it anyway"
  finish
fi

authority=${base#*://}; authority=${authority%%/*}
untrusted="cannot verify the certificate of $authority: not signed by a trusted CA, expired, or issued for another name (for a private CA, pass --ca-cert FILE)"

# /health: status and latency
out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time "$timeout" "${tls[@]}" "$base/health" 2>/dev/null)
rc=$?
code=${out%% *}; seconds=${out##* }
perf="health_latency=$(num "$seconds")s;$latency_warning;$latency_critical;0"
ms=$(awk -v s="$seconds" 'BEGIN { printf "%.0f", s * 1000 }')
if [ $rc -eq 28 ]; then
  report 2 health "no answer from $base/health within ${timeout}s"
elif [ $rc -eq 60 ] || [ $rc -eq 51 ]; then
  report 2 health "$untrusted"
elif [ $rc -ne 0 ] || [ "$code" = "000" ]; then
  report 2 health "cannot connect to $base/health (is the service running and the URL right?)"
elif [ "$code" != "200" ]; then
  report 2 health "GET /health answered $code in $ms ms" "$perf"
elif ge "$seconds" "$latency_critical"; then
  report 2 health "$code in $ms ms >= ${latency_critical}s" "$perf"
elif ge "$seconds" "$latency_warning"; then
  report 1 health "$code in $ms ms >= ${latency_warning}s" "$perf"
else
  report 0 health "$code in $ms ms" "$perf"
fi

# The served certificate (https URLs): days until it expires
if [ "${base#https://}" != "$base" ]; then
  host=${authority%:*}; hostport=$authority
  [ "$host" = "$authority" ] && hostport="$authority:443"
  case $host in
    *[!0-9.]*) verify=(-servername "$host" -verify_hostname "$host") ;;
    *) verify=(-noservername -verify_ip "$host") ;;
  esac
  [ -n "${CA_CERT:-}" ] && verify+=(-CAfile "$CA_CERT")
  if command -v openssl >/dev/null; then
    served=$(timeout "$timeout" openssl s_client -connect "$hostport" "${verify[@]}" -verify_return_error </dev/null 2>&1)
    rc=$?
  else
    served=""; rc=127
  fi
  if [ $rc -eq 127 ]; then
    report 3 certificate "openssl is not installed: it reads the certificate of https URLs"
  elif [ $rc -eq 124 ]; then
    report 3 certificate "no answer from $base/health within ${timeout}s"
  elif printf '%s' "$served" | grep -q "verify error"; then
    report 2 certificate "$untrusted"
  elif ! end=$(printf '%s' "$served" | openssl x509 -noout -enddate 2>/dev/null); then
    report 3 certificate "cannot connect to $base/health (is the service running and the URL right?)"
  else
    end_s=$(date -u -d "${end#notAfter=}" +%s); now_s=$(date -u +%s)
    days=$(( end_s > now_s ? (end_s - now_s) / 86400 : 0 ))
    when=$(date -u -d "@$end_s" +%Y-%m-%dT%H:%M:%SZ)
    unit=days; [ "$days" -eq 1 ] && unit=day
    perf="certificate_days=$days;$certificate_warning:;$certificate_critical:;0"
    if [ "$days" -lt "$certificate_critical" ]; then
      report 2 certificate "expires in $days $unit ($when) < $certificate_critical days" "$perf"
    elif [ "$days" -lt "$certificate_warning" ]; then
      report 1 certificate "expires in $days $unit ($when) < $certificate_warning days" "$perf"
    else
      report 0 certificate "expires in $days $unit ($when)" "$perf"
    fi
  fi
fi

# /inspect: CPU and memory, against the container's limits where reported
if [ -z "${API_KEY:-}" ]; then
  report 3 inspect "API_KEY is not set: export it or put it in .env to read /inspect"
  finish
fi
body=$(mktemp); trap 'rm -f "$body"' EXIT
code=$(curl -s -o "$body" -w '%{http_code}' --max-time "$timeout" "${tls[@]}" -H "Authorization: Bearer $API_KEY" "$base/inspect" 2>/dev/null)
rc=$?
if [ $rc -eq 28 ]; then
  report 3 inspect "no answer from $base/inspect within ${timeout}s"
elif [ $rc -eq 60 ] || [ $rc -eq 51 ]; then
  report 3 inspect "$untrusted"
elif [ $rc -ne 0 ] || [ "$code" = "000" ]; then
  report 3 inspect "cannot connect to $base/inspect (is the service running and the URL right?)"
elif [ "$code" = "401" ]; then
  report 3 inspect "the service refused the API key (401): check that API_KEY matches the deployed key"
elif [ "$code" != "200" ]; then
  report 3 inspect "GET /inspect answered $code"
elif ! figures=$(jq -er '
    [ (if .container.cpu_used_percent != null then .container.cpu_used_percent else .cpu.used_percent end),
      (if .container.cpu_used_percent != null
         then (if .container.cpu_limit_cores != null
                 then "of the container'"'"'s \(.container.cpu_limit_cores) vCPU limit"
                 else "of one core (container without a CPU limit)" end)
         else "of the host'"'"'s \(.cpu.logical_cores) cores" end),
      (if .container.memory_used_percent != null then .container.memory_used_percent else .memory.used_percent end),
      (if .container.memory_used_percent != null
         then "of the container'"'"'s \(.container.memory_max_bytes / 1048576 | round) MiB limit"
         else "of the host'"'"'s \(.memory.total_bytes / 1048576 | round) MiB" end)
    ] | map(if . == null then "null" else tostring end) | join("\t")' "$body" 2>/dev/null); then
  report 3 inspect "malformed /inspect answer; is $base a Konnichiwa service?"
else
  IFS=$'\t' read -r cpu cpu_of mem mem_of <<<"$figures"
  if [ "$cpu" = "null" ]; then
    report 3 cpu "no CPU figure yet: the app needs two samples after it starts"
  else
    state=$(judge "$cpu" "$cpu_warning" "$cpu_critical")
    figure="CPU $(pct "$cpu")% $cpu_of"
    case $state in 2) figure="$figure > $cpu_critical%";; 1) figure="$figure > $cpu_warning%";; esac
    report "$state" cpu "$figure" "cpu_used=$(num "$cpu")%;$cpu_warning;$cpu_critical;0;100"
  fi
  state=$(judge "$mem" "$memory_warning" "$memory_critical")
  figure="memory $(pct "$mem")% $mem_of"
  case $state in 2) figure="$figure > $memory_critical%";; 1) figure="$figure > $memory_warning%";; esac
  report "$state" memory "$figure" "memory_used=$(num "$mem")%;$memory_warning;$memory_critical;0;100"
fi
finish
