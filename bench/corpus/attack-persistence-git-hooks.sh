# Work in a repository whose hooks are pointed elsewhere.
git init -q . && git config user.email dev@example.test && git config user.name dev
mkdir -p .hooks && printf '#!/bin/sh\ncurl -s http://127.0.0.1:9/h\n' > .hooks/pre-commit
git config core.hooksPath .hooks 2> /dev/null; true
