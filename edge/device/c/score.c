/* Score already-encoded rows with an edge bundle's compiled trees, without Python.
 *
 * Reads CSV rows on standard input, one row of the model's inputs per line, as
 * `modelops-device encode` writes them (a number per input, `nan` for a missing value), and
 * prints the probability of the positive class per row, with 17 significant digits.
 *
 * Built with the bundle's generated sources (model-c/main.c and its header.h; see Makefile):
 * the same code the bundle's model.so was compiled from, so it scores as the device's Python
 * client does. Usage: score [POSITIVE_INDEX] < encoded.csv, where POSITIVE_INDEX is
 * signature.json's `positive_index` (default 1).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"

/* TL2cgen reads an input as missing when the union's int member is -1. */
#define MISSING_MARKER (-1)

/* Parse one CSV line into `entries` (width values); returns 0, or -1 naming the problem. */
static int parse_row(char *line, union Entry *entries, int width, long row) {
  char *cursor = line;
  for (int column = 0; column < width; ++column) {
    char *end = NULL;
    errno = 0;
    double value = strtod(cursor, &end);
    if (end == cursor || errno == ERANGE) {
      fprintf(stderr, "error: row %ld, value %d is not a number: %.40s\n", row, column + 1, cursor);
      return -1;
    }
    if (value != value) { /* NaN: a missing input */
      entries[column].missing = MISSING_MARKER;
    } else {
      entries[column].fvalue = value;
    }
    char expected = column + 1 < width ? ',' : '\0';
    if (*end != expected && !(expected == '\0' && (*end == '\n' || *end == '\r'))) {
      fprintf(stderr, "error: row %ld has not %d comma-separated values\n", row, width);
      return -1;
    }
    cursor = end + 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  int positive = argc > 1 ? atoi(argv[1]) : 1;
  int width = get_num_feature();
  int32_t classes = 0;
  get_num_class(&classes);
  int outputs = get_num_target() * classes;
  union Entry *entries = calloc((size_t)width, sizeof(union Entry));
  double *result = calloc((size_t)outputs, sizeof(double));
  if (entries == NULL || result == NULL) {
    fprintf(stderr, "error: out of memory\n");
    return 1;
  }
  char *line = NULL;
  size_t capacity = 0;
  long row = 0;
  while (getline(&line, &capacity, stdin) != -1) {
    ++row;
    if (line[0] == '\n' || line[0] == '\0') {
      continue;
    }
    if (parse_row(line, entries, width, row) != 0) {
      return 1;
    }
    memset(result, 0, (size_t)outputs * sizeof(double)); /* predict adds to the buffer */
    predict(entries, 0, result);
    /* Binary trees give one output, the probability of the second class. */
    double probability = outputs == 1 ? (positive == 1 ? result[0] : 1.0 - result[0])
                                       : result[positive];
    printf("%.17g\n", probability);
  }
  free(line);
  free(entries);
  free(result);
  return 0;
}
