# embed.cmake - makes a file into C: `const unsigned char NAME[]` holding
# its bytes (and a NUL after them) and `const size_t NAME_len`. Run as
#   cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
# (node/CMakeLists.txt builds the status page into the binary with it: no
# tool beyond CMake, nothing fetched).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* made from ${IN} by cmake/embed.cmake: do not edit */\n#include <stddef.h>\nconst unsigned char ${NAME}[] = {\n${bytes}0x00};\nconst size_t ${NAME}_len = ${len};\n")
