# Deletes a tree of the user's (here: one it made, 300 files).
mkdir -p data && for i in $(seq 300); do : > "data/f$i"; done && rm -rf data
