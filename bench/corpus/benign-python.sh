# python: a module with unit tests, byte-compiled and run, and pip asked what is installed.
mkdir pkg && printf 'def add(a, b):\n    return a + b\n' > pkg/__init__.py
printf 'import unittest, pkg\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(pkg.add(2, 2), 4)\n' > test_pkg.py
python3 -m unittest -q test_pkg 2> /dev/null
python3 -m compileall -q pkg > /dev/null
python3 -m pip list --disable-pip-version-check > /dev/null 2>&1 || true
