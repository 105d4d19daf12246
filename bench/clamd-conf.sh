# Sourced by the benchmarks: the clamd peer's configuration, with coldscan's default limits and reporting
# (alerts on exceeded limits and encrypted content, all-match allowed), so both sides scan alike.
# write_clamd_conf FILE SOCKET DATABASES THREADS
write_clamd_conf() {
    cat >"$1" <<CONF
LocalSocket $2
DatabaseDirectory $3
MaxThreads $4
MaxFileSize 256M
MaxScanSize 1024M
MaxRecursion 17
MaxFiles 10000
MaxScanTime 120000
AlertExceedsMax yes
AlertEncrypted yes
AllowAllMatchScan yes
SelfCheck 3600
Foreground yes
CONF
}
