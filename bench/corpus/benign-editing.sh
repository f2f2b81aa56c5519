# An editor's and an agent's everyday tools: search, edit in place, compare, patch.
mkdir -p src && for i in 1 2 3 4 5 6 7 8; do printf 'line %s\nTODO fix %s\n' "$i" "$i" > "src/f$i.txt"; done
grep -rn TODO src > /dev/null && find . -name '*.txt' | sort | head -3 > /dev/null
cp src/f1.txt src/f1.orig && sed -i 's/TODO/DONE/' src/f1.txt
diff -u src/f1.orig src/f1.txt > fix.patch || true
patch -s -R src/f1.txt < fix.patch && rm src/f1.orig fix.patch
wc -l src/*.txt > /dev/null && cat README 2> /dev/null || true
ls -la > /dev/null && rm -r src
