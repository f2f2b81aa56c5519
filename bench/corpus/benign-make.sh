# make and cc: a small C project with a test target.
printf 'int add(int a, int b) { return a + b; }\n' > add.c
printf 'int add(int, int);\nint main(void) { return add(2, 2) == 4 ? 0 : 1; }\n' > test.c
printf 'test: add.o test.o\n\tcc -o test add.o test.o && ./test\nclean:\n\trm -f *.o test\n' > Makefile
make -s test && make -s clean
