# Resident-memory sampling shared by the soak scripts; source it, then:
#   sample_rss WATCHED_PID SAMPLED_PID CSV   samples SAMPLED_PID's VmRSS every 10 s while
#                                           WATCHED_PID runs, into CSV (t_s,rss_mb)
#   summarise_rss CSV                       memory at 1 min, at the end, growth per minute after

sample_rss() {
    local watched=$1 sampled=$2 csv=$3 t=0 rss
    echo "t_s,rss_mb" >"$csv"
    while kill -0 "$watched" 2>/dev/null; do
        rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$sampled/status" 2>/dev/null || echo "")
        echo "$t,$rss" >>"$csv"
        sleep 10
        t=$((t + 10))
    done
}

summarise_rss() {
    echo "== memory (MB): at 1 min, at the end, growth per minute after the first"
    awk -F, 'NR > 1 && $2 != "" { t[n] = $1; r[n] = $2; n++ }
        END {
            for (i = 0; i < n; i++) if (t[i] >= 60) { a = i; break }
            printf "%.1f at %d s, %.1f at %d s, %.2f MB/min\n", r[a], t[a], r[n-1], t[n-1], (r[n-1] - r[a]) / ((t[n-1] - t[a]) / 60)
        }' "$1"
}
