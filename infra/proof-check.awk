#!/usr/bin/awk -f
# Reads the merged proof lines (infra/proof-merge.awk) and prints, one per line, every figure that says something was lost,
# leaked or broken: a count that must be 0, a flag that must be true, N/M with N < M, faults injected but not survived.
# infra/test.sh counts each printed line as a failed check; a figure that no test asserts (secrets_in_logs of every host) fails the run here.
/^proof [a-z_-]+: / {
  group = $2; sub(/:$/, "", group); injected = ""; survived = ""
  for (i = 3; i <= NF; i++) {
    eq = index($i, "="); if (eq == 0) continue
    key = substr($i, 1, eq - 1); value = substr($i, eq + 1)
    if (key ~ /^(5xx|duplicates|lost|ddl|leaked_keys|non_problem_errors|secrets_in_logs|secrets_in_storage|secrets_in_spans|leftover_processes|leftover_docker)$/ && value != "0")
      print "proof " group ": " key "=" value " (must be 0)"
    if (key ~ /_ok$/ && value != "true") print "proof " group ": " key "=" value " (must be true)"
    if (value ~ /^[0-9]+\/[0-9]+$/) { split(value, f, "/"); if (f[1] != f[2]) print "proof " group ": " key "=" value " (must be all)" }
    if (key == "injected") injected = value
    if (key == "survived") survived = value
  }
  if (injected != "" && injected != survived) print "proof " group ": survived=" survived " of injected=" injected
}
