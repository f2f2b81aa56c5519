# Downloads and runs a script; then tries a program dropped in /dev/shm.
sh -c 'curl -s --max-time 1 http://127.0.0.1:9/i | sh' 2> /dev/null
cp /bin/true /dev/shm/.x 2> /dev/null && /dev/shm/.x; true
