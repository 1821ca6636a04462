#!/usr/bin/env bash
# status-quo.sh: audit a pump through the CareLink stick and leave what was found in logs/.
#
#   ./status-quo.sh                 the built-in emulated pump (a 523 with CGM, serial 208850):
#                                   no hardware, no root
#   ./status-quo.sh PORT SERIAL     a real stick and pump, e.g. /dev/ttyUSB0 665455
#
# Experiments, each logged to logs/<name>.log: baseline.stick, session, stick, commands,
# download (pages to logs/ReadHistoryData-page-N.data, ReadGlucoseHistory-page-N.data),
# postmortem.stick.  A failed experiment does not stop the others.  Everything printed also
# goes to status-quo.log; logs/explain.log summarises the run.
# Exit: 0 every experiment worked, else the exit code of the first one that failed
# (README "Exit codes"); 2 bad arguments.
# Environment: EMULATOR_MODEL (default 523), EMULATOR_TIMING (fast|real, default fast).
set -u
CALLER_DIR=$PWD            # a relative PORT is the caller's, resolved before the cd below
cd "$(dirname "$0")" || exit 1
. bin/common

usage () { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

EMULATED=""
case $# in
  0) EMULATED=1; SERIAL=208850; PORT=carelink.ttyUSB0 ;;
  2) PORT=$1; SERIAL=$2
     case "$PORT" in
       /*|*://*|"") ;;                   # absolute, or a URL (socket://, replay://...)
       *) PORT=$CALLER_DIR/$PORT ;;      # e.g. ./carelink.ttyUSB0 of the caller's folder
     esac ;;
  1) case "$1" in -h|--help) usage; exit 0 ;; esac
     echo "status-quo.sh: give both PORT and SERIAL, or nothing for the emulated pump" >&2; exit 2 ;;
  *) echo "status-quo.sh: too many arguments (PORT SERIAL, or nothing)" >&2; exit 2 ;;
esac
case "$SERIAL" in
  [0-9][0-9][0-9][0-9][0-9][0-9]) ;;
  *) echo "status-quo.sh: serial '$SERIAL' is not six digits (it is on the back of the pump)" >&2; exit 2 ;;
esac
export PORT SERIAL
LOGS=logs
MODEL=${EMULATOR_MODEL:-523}
EMULATOR_PID=""
EMULATOR_OUT=""

start_emulator () {
  local out i
  out=$(mktemp "${TMPDIR:-/tmp}/decocare-emulator.XXXXXX") || return 1
  EMULATOR_OUT=$out
  if [ -e "$PORT" ]; then
    echo "status-quo.sh: ./$PORT is in use (another emulated pump running here?): stop it first" >&2
    return 1
  fi
  rm -f "$PORT"     # a dangling link left by a killed run
  # python itself in the background (not the decocare_python function, whose subshell would
  # be what $! names: killing it would leave the emulator running)
  PYTHONPATH="$DECOCARE_ROOT${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" -m decocare.emulator \
    --model "$MODEL" --serial "$SERIAL" --link "$PORT" \
    --timing "${EMULATOR_TIMING:-fast}" > "$out" 2>&1 &
  EMULATOR_PID=$!
  for i in $(seq 100); do
    [ -s "$out" ] && [ -e "$PORT" ] && break
    kill -0 "$EMULATOR_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! [ -e "$PORT" ]; then
    echo "status-quo.sh: the emulated pump did not start:" >&2
    cat "$out" >&2
    return 1
  fi
  echo ">>> emulated pump: model $MODEL, serial $SERIAL, port $PORT"
}

stop_emulator () {
  if [ -n "$EMULATOR_PID" ]; then
    kill "$EMULATOR_PID" 2>/dev/null
    wait "$EMULATOR_PID" 2>/dev/null
    EMULATOR_PID=""
    rm -f "$PORT" "$EMULATOR_OUT"
  fi
}

RESULTS=()
FIRST_FAILURE=0
experiment () {  # experiment NAME FUNCTION: output to logs/NAME.log (and the screen)
  local name=$1 rc start
  echo ">>> $name (logs/$name.log)"
  start=$(date +%s)
  "$2" 2>&1 | tee "$LOGS/$name.log"
  rc=${PIPESTATUS[0]}
  RESULTS+=(--result "$name=$rc")
  # the host clock around the pump clock read, for the drift in explain.log
  [ "$name" = commands ] && RESULTS+=(--window "$start" "$(date +%s)")
  [ "$rc" = 0 ] || { echo "<<< $name failed: exit $rc"; [ "$FIRST_FAILURE" = 0 ] && FIRST_FAILURE=$rc; }
  return 0
}

main () {
  if [ -n "$EMULATED" ]; then
    trap stop_emulator EXIT
    trap 'exit 130' INT TERM
    start_emulator || return 1
  fi
  mkdir -p "$LOGS"
  # a previous run's pages would be mistaken for this run's
  # (the page file names of decocare/pages.py, which a shell script cannot import)
  rm -f "$LOGS"/*.log "$LOGS"/ReadHistoryData-page-*.data* "$LOGS"/ReadGlucoseHistory-page-*.data* \
    "$LOGS"/*.manifest.json
  echo ">>> status-quo: port $PORT, pump serial $SERIAL"
  experiment baseline.stick run_stick
  experiment session run_session
  experiment stick run_stick
  experiment commands run_commands
  experiment download run_download
  experiment postmortem.stick run_stick
  stop_emulator
  decocare_python -m decocare.explain "$LOGS" --port "$PORT" --serial "$SERIAL" \
    ${EMULATED:+--emulated} "${RESULTS[@]}" > "$LOGS/explain.log" \
    || { [ "$FIRST_FAILURE" = 0 ] && FIRST_FAILURE=1; }
  echo ">>> explain ($LOGS/explain.log)"
  cat "$LOGS/explain.log"
  return "$FIRST_FAILURE"
}

main 2>&1 | tee status-quo.log
exit "${PIPESTATUS[0]}"
