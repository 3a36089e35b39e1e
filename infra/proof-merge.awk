#!/usr/bin/awk -f
# Merges the proof suites' summary lines by group (see infra/test.sh): one line per group, in first-seen order.
/^proof [a-z_-]+: / {
  group = $2; sub(/:$/, "", group)
  if (!(group in seen)) { seen[group] = 1; groups[++ng] = group }
  for (i = 3; i <= NF; i++) {
    eq = index($i, "="); if (eq == 0) continue
    key = substr($i, 1, eq - 1); value = substr($i, eq + 1); id = group SUBSEP key
    if (!(id in has)) { has[id] = 1; order[group, ++nk[group]] = key; merged[id] = value; continue }
    old = merged[id]
    if (value ~ /^[0-9]+$/ && old ~ /^[0-9]+$/) merged[id] = old + value
    else if (value ~ /^[0-9]+\/[0-9]+$/ && old ~ /^[0-9]+\/[0-9]+$/) {
      split(old, a, "/"); split(value, b, "/"); merged[id] = (a[1] + b[1]) "/" (a[2] + b[2])
    }
    else if ((value == "true" || value == "false") && (old == "true" || old == "false")) merged[id] = (old == "true" && value == "true") ? "true" : "false"
    else merged[id] = value
  }
}
END {
  for (g = 1; g <= ng; g++) {
    group = groups[g]; line = "proof " group ":"
    for (k = 1; k <= nk[group]; k++) line = line " " order[group, k] "=" merged[group SUBSEP order[group, k]]
    print line
  }
}
