# Reads another process's environment (tokens of the user's shell, of other agents).
for p in 1 $PPID; do head -c 200 /proc/$p/environ > /dev/null 2>&1; done; true
