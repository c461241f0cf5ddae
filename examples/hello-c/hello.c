#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello from C, built by pytest-pods (%d args)\n", argc - 1);
    return 0;
}
