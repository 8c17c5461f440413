# What the shell tests share (source it): waiting on a condition with a deadline instead of a
# fixed sleep, and showing a failed script's own failing lines.

# wait_checkpointed TIMEOUT_SECONDS DB...: waits until each service database's signed audit
# checkpoint covers the audit log's head as it stood when the wait began (a running service signs
# within about 2 s of its log growing). Returns 1, naming the database, if one is not covered in
# time.
wait_checkpointed() {
  local timeout=$1 db head last deadline
  shift
  deadline=$((SECONDS + timeout))
  for db in "$@"; do
    head=$(sqlite3 -readonly "$db" "SELECT COALESCE(MAX(seq), 0) FROM audit" 2>/dev/null || echo 0)
    ((head > 0)) || continue
    while :; do
      last=$(tail -n 1 "$db.audit-checkpoints" 2>/dev/null | cut -d' ' -f1)
      [[ -n $last ]] && ((last >= head)) && break
      if ((SECONDS >= deadline)); then
        echo "wait_checkpointed: $db: no signed checkpoint covers entry $head within ${timeout}s" \
          "(last checkpoint: ${last:-none})" >&2
        return 1
      fi
      sleep 0.2
    done
  done
}

# failures_of FILE: the FAIL lines of a script's output and its summary line, for a message.
failures_of() {
  { grep -E '^FAIL' "$1" | head -5; tail -n 1 "$1"; } | tr '\n' ' '
}

# wait_drained TIMEOUT_SECONDS DB...: waits until no outbox of these service databases holds a
# message still to send. Returns 1, naming what is left, when that takes too long.
wait_drained() {
  local timeout=$1 db pending deadline
  shift
  deadline=$((SECONDS + timeout))
  for db in "$@"; do
    while :; do
      pending=$(sqlite3 -readonly "$db" "SELECT COUNT(*) FROM outbox WHERE status = 0" 2>/dev/null ||
        echo "?")
      [[ $pending == 0 ]] && break
      if ((SECONDS >= deadline)); then
        echo "wait_drained: $db still has $pending message(s) to send after ${timeout}s" >&2
        return 1
      fi
      sleep 0.2
    done
  done
}
