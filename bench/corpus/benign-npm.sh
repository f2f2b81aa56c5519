# npm: a local package packed and installed offline into an app, then its tests run.
export npm_config_cache="$PWD/.npm-cache" npm_config_update_notifier=false
mkdir lib app && cd lib && npm init -y > /dev/null && printf 'module.exports = (a, b) => a + b;\n' > index.js
npm pack --silent > /dev/null && cd ../app && npm init -y > /dev/null
npm install --offline --no-audit --no-fund --silent ../lib/lib-1.0.0.tgz
node -e 'const add = require("lib"); if (add(2, 2) !== 4) process.exit(1)'
npm test --silent > /dev/null 2>&1 || true
