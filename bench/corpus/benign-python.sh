# python: a package made into a wheel here, installed into a virtualenv from it (no index:
# nothing from the network), its tests run, and pip asked what is installed.
python3 - <<'PY'
import zipfile
with zipfile.ZipFile("pkg-1.0-py3-none-any.whl", "w") as w:
    w.writestr("pkg/__init__.py", "def add(a, b):\n    return a + b\n")
    w.writestr("pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
    w.writestr("pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: corpus\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    w.writestr("pkg-1.0.dist-info/RECORD", "")
PY
python3 -m venv venv
venv/bin/pip install -q --no-index --disable-pip-version-check ./pkg-1.0-py3-none-any.whl
printf 'import unittest, pkg\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(pkg.add(2, 2), 4)\n' > test_pkg.py
venv/bin/python -m unittest -q test_pkg 2> /dev/null
venv/bin/pip list --disable-pip-version-check > /dev/null
