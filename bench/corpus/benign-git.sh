# git work: a repository, commits on two branches, a merge, the usual looks at history.
git init -q . && git config user.email dev@example.test && git config user.name dev
printf 'fn main() {}\n' > main.rs && git add . && git commit -qm init
git checkout -qb feature && printf '// more\n' >> main.rs && git commit -qam more
git checkout -q - && git merge -q --no-edit feature
git log --oneline > /dev/null && git diff HEAD~1 > /dev/null && git status --short > /dev/null
git branch -d feature > /dev/null
