#!/usr/bin/env bash
# One-pass check of the Konnichiwa service for a box with only bash, curl and jq: the same checks,
# thresholds and exit codes as `monitor check` (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; the
# worst state wins, CRITICAL > UNKNOWN > WARNING > OK).
#
# Environment: API_URL (required), API_KEY (for /inspect; .env in the working directory is read),
# CPU_WARNING/CPU_CRITICAL, MEMORY_WARNING/MEMORY_CRITICAL (percent; default 70/90),
# LATENCY_WARNING/LATENCY_CRITICAL (seconds; default 0.5/2), TIMEOUT (seconds; default 5).
set -uo pipefail

if [ -z "${API_KEY:-}" ] && [ -f .env ]; then
  API_KEY=$(sed -n 's/^API_KEY=//p' .env | tail -n 1)
fi
cpu_warning=${CPU_WARNING:-70}; cpu_critical=${CPU_CRITICAL:-90}
memory_warning=${MEMORY_WARNING:-70}; memory_critical=${MEMORY_CRITICAL:-90}
latency_warning=${LATENCY_WARNING:-0.5}; latency_critical=${LATENCY_CRITICAL:-2}
timeout=${TIMEOUT:-5}

worst=0
severity() { case $1 in 0) echo 0;; 1) echo 1;; 3) echo 2;; 2) echo 3;; esac; }
report() { # state check reason [perfdata]
  local labels=(OK WARNING CRITICAL UNKNOWN)
  local line="${labels[$1]}: $2 - $3"
  [ -n "${4:-}" ] && line="$line | $4"
  echo "$line"
  if [ "$(severity "$1")" -gt "$(severity "$worst")" ]; then worst=$1; fi
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
judge() { # value warning critical -> state (strictly above, as the reason says)
  if gt "$1" "$3"; then echo 2; elif gt "$1" "$2"; then echo 1; else echo 0; fi
}

for tool in curl jq awk; do
  command -v "$tool" >/dev/null || { report 3 config "$tool is not installed"; exit 3; }
done
if [ -z "${API_URL:-}" ]; then report 3 config "API_URL is not set (e.g. API_URL=http://127.0.0.1:4000)"; exit 3; fi
base=${API_URL%/}

# /health: status and latency
out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time "$timeout" "$base/health" 2>/dev/null)
rc=$?
code=${out%% *}; seconds=${out##* }
perf="health_latency=${seconds}s;$latency_warning;$latency_critical;0"
ms=$(awk -v s="$seconds" 'BEGIN { printf "%.0f", s * 1000 }')
if [ $rc -eq 28 ]; then
  report 2 health "no answer from $base/health within ${timeout}s"
elif [ $rc -ne 0 ] || [ "$code" = "000" ]; then
  report 2 health "cannot connect to $base/health (is the service running and the URL right?)"
elif [ "$code" != "200" ]; then
  report 2 health "GET /health answered $code in $ms ms" "$perf"
else
  state=0
  if ge "$seconds" "$latency_critical"; then state=2; elif ge "$seconds" "$latency_warning"; then state=1; fi
  case $state in
    2) report 2 health "$code in $ms ms >= ${latency_critical}s" "$perf" ;;
    1) report 1 health "$code in $ms ms >= ${latency_warning}s" "$perf" ;;
    *) report 0 health "$code in $ms ms" "$perf" ;;
  esac
fi

# /inspect: CPU and memory, against the container's limits where reported
if [ -z "${API_KEY:-}" ]; then
  report 3 inspect "API_KEY is not set: export it or put it in .env to read /inspect"
  exit "$worst"
fi
body=$(mktemp); trap 'rm -f "$body"' EXIT
code=$(curl -s -o "$body" -w '%{http_code}' --max-time "$timeout" -H "Authorization: Bearer $API_KEY" "$base/inspect" 2>/dev/null)
rc=$?
if [ $rc -eq 28 ]; then
  report 3 inspect "no answer from $base/inspect within ${timeout}s"
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
    figure="CPU $(printf '%.0f' "$cpu")% $cpu_of"
    case $state in 2) figure="$figure > $cpu_critical%";; 1) figure="$figure > $cpu_warning%";; esac
    report "$state" cpu "$figure" "cpu_used=$(printf '%.3g' "$cpu")%;$cpu_warning;$cpu_critical;0;100"
  fi
  state=$(judge "$mem" "$memory_warning" "$memory_critical")
  figure="memory $(printf '%.0f' "$mem")% $mem_of"
  case $state in 2) figure="$figure > $memory_critical%";; 1) figure="$figure > $memory_warning%";; esac
  report "$state" memory "$figure" "memory_used=$(printf '%.3g' "$mem")%;$memory_warning;$memory_critical;0;100"
fi
exit "$worst"
