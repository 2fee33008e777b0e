/* qism._native: the labeling path's inner loops in C, each the exact twin of a pure-Python function
 * (features/hashing.py, clean.py's CharMap), which stays as the fallback and the reference the tests
 * compare with. Built by setup.py as an optional extension: a machine without a compiler installs
 * and runs the pure path.
 *
 * word_ngram_counts: tokenizing, hashing, word and lead n-grams and counting per bucket in one pass
 * over each text, with no Python object per token.
 * char_map: the character-level cleaning steps (deletions, then one-for-one replacements) in one
 * pass, through a table of the Basic Multilingual Plane.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define PRIME 0x100000001B3ULL
#define LEAD_SALT 0x5BD1E995ULL
#define MASK32 0xFFFFFFFFULL

/* The finalizer of MurmurHash3 over the low 32 bits, as hashing._mix. */
static inline uint64_t mix(uint64_t h) {
    h &= MASK32;
    h ^= h >> 16;
    h = (h * 0x85EBCA6BULL) & MASK32;
    h ^= h >> 13;
    h = (h * 0xC2B2AE35ULL) & MASK32;
    return h ^ (h >> 16);
}

/* hashing._combine: a word sequence's hash extended by one word. */
static inline uint64_t combine(uint64_t left, uint64_t right) { return mix(left * 0x9E3779B1ULL + right + 0x27D4EB2FULL); }

/* `\w` as the regex module (and hashing.is_word_char) has it: str.isalnum() or the underscore; for
 * the BMP from a table filled when the module loads. */
static unsigned char bmp_word_chars[0x10000];

static inline int is_word_char(Py_UCS4 c) {
    return c < 0x10000 ? bmp_word_chars[c] : Py_UNICODE_ISALNUM(c);
}

typedef struct {
    uint64_t *items;
    Py_ssize_t size, capacity;
} Buffer;

static int buffer_reserve(Buffer *buffer, Py_ssize_t needed) {
    if (needed <= buffer->capacity) return 0;
    Py_ssize_t capacity = buffer->capacity ? buffer->capacity : 1024;
    while (capacity < needed) capacity *= 2;
    uint64_t *items = PyMem_Realloc(buffer->items, (size_t)capacity * sizeof(uint64_t));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->items = items;
    buffer->capacity = capacity;
    return 0;
}

/* The hashes of the words of one text (runs of two or more word characters): the sum of the code
 * points times PRIME**1, PRIME**2, ... modulo 2**64, folded and mixed (hashing.word_hashes). */
static int text_word_hashes(PyObject *text, Buffer *words) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    words->size = 0;
    Py_ssize_t i = 0;
    while (i < length) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (!is_word_char(c)) {
            i++;
            continue;
        }
        uint64_t hash = 0, power = PRIME;
        Py_ssize_t start = i;
        for (; i < length && is_word_char(c = PyUnicode_READ(kind, data, i)); i++) {
            hash += (uint64_t)c * power;
            power *= PRIME;
        }
        if (i - start >= 2) {
            if (buffer_reserve(words, words->size + 1) < 0) return -1;
            words->items[words->size++] = mix(hash ^ (hash >> 32));
        }
    }
    return 0;
}

/* What a counting needs besides the texts: the n-gram range, the lead words, the hashing space and,
 * to count straight into a fitted model's columns, each bucket's column (-1: not kept). */
typedef struct {
    long low, high, lead_words;
    uint64_t n_buckets;
    const int32_t *lookup; /* NULL: count per bucket */
    uint64_t n_indices;    /* n_buckets, or the columns of `lookup` */
    Buffer words, lead, grams, terms;
    PyObject *indices, *counts; /* bytearrays of int32 */
    Py_ssize_t n_stored;
} Counting;

/* Append the bucket (or kept column) of every n-gram of `words`, low <= n <= high
 * (hashing.ngram_hashes); `grams` is scratch space for the n-gram hashes. */
static int add_ngrams(Counting *state, const uint64_t *words, Py_ssize_t n_words) {
    Buffer *grams = &state->grams, *terms = &state->terms;
    if (buffer_reserve(grams, n_words) < 0) return -1;
    memcpy(grams->items, words, (size_t)n_words * sizeof(uint64_t));
    for (long n = 1; n <= state->high && n <= n_words; n++) {
        Py_ssize_t count = n_words - n + 1;
        if (n > 1)
            for (Py_ssize_t i = 0; i < count; i++) grams->items[i] = combine(grams->items[i], words[i + n - 1]);
        if (n < state->low) continue;
        if (buffer_reserve(terms, terms->size + count) < 0) return -1;
        for (Py_ssize_t i = 0; i < count; i++) {
            uint64_t bucket = grams->items[i] % state->n_buckets;
            if (state->lookup == NULL)
                terms->items[terms->size++] = bucket;
            else if (state->lookup[bucket] >= 0)
                terms->items[terms->size++] = (uint64_t)state->lookup[bucket];
        }
    }
    return 0;
}

/* Sort `items` (each below `bound` <= 2**31) by least-significant-digit radix, eight bits a pass, as
 * many passes as `bound` needs: far faster than qsort's comparisons for an article's few thousand terms. */
static int radix_sort(Buffer *items, Buffer *scratch, uint64_t bound) {
    if (buffer_reserve(scratch, items->size) < 0) return -1;
    uint64_t *from = items->items, *to = scratch->items;
    int passes = 0;
    for (uint64_t range = bound > 1 ? bound - 1 : 0; range; range >>= 8) passes++;
    for (int pass = 0; pass < passes; pass++) {
        Py_ssize_t offsets[256] = {0};
        int shift = 8 * pass;
        for (Py_ssize_t i = 0; i < items->size; i++) offsets[(from[i] >> shift) & 0xFF]++;
        Py_ssize_t total = 0;
        for (int digit = 0; digit < 256; digit++) {
            Py_ssize_t count = offsets[digit];
            offsets[digit] = total;
            total += count;
        }
        for (Py_ssize_t i = 0; i < items->size; i++) to[offsets[(from[i] >> shift) & 0xFF]++] = from[i];
        uint64_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != items->items) memcpy(items->items, from, (size_t)items->size * sizeof(uint64_t));
    return 0;
}

/* Sort a text's terms and store each distinct one with its count (a CSR row, indices sorted). */
static int store_row(Counting *state) {
    Buffer *terms = &state->terms;
    if (radix_sort(terms, &state->grams, state->n_indices) < 0) return -1;
    Py_ssize_t distinct = 0;
    for (Py_ssize_t i = 0; i < terms->size; i++) distinct += i == 0 || terms->items[i] != terms->items[i - 1];
    Py_ssize_t needed = (state->n_stored + distinct) * (Py_ssize_t)sizeof(int32_t);
    if (PyByteArray_GET_SIZE(state->indices) < needed) {
        Py_ssize_t grown = needed * 2;
        if (PyByteArray_Resize(state->indices, grown) < 0 || PyByteArray_Resize(state->counts, grown) < 0) return -1;
    }
    int32_t *indices = (int32_t *)PyByteArray_AS_STRING(state->indices);
    int32_t *counts = (int32_t *)PyByteArray_AS_STRING(state->counts);
    for (Py_ssize_t i = 0; i < terms->size; i++) {
        if (i > 0 && terms->items[i] == terms->items[i - 1]) {
            counts[state->n_stored - 1]++;
        } else {
            indices[state->n_stored] = (int32_t)terms->items[i];
            counts[state->n_stored++] = 1;
        }
    }
    return 0;
}

static int count_text(Counting *state, PyObject *text) {
    if (text_word_hashes(text, &state->words) < 0) return -1;
    state->terms.size = 0;
    if (add_ngrams(state, state->words.items, state->words.size) < 0) return -1;
    if (state->lead_words > 0) {
        Py_ssize_t n_lead = state->words.size < state->lead_words ? state->words.size : state->lead_words;
        if (buffer_reserve(&state->lead, n_lead) < 0) return -1;
        for (Py_ssize_t i = 0; i < n_lead; i++) state->lead.items[i] = mix(state->words.items[i] ^ LEAD_SALT);
        if (add_ngrams(state, state->lead.items, n_lead) < 0) return -1;
    }
    return store_row(state);
}

/* Each text's row, the row starts in `indptr`; 0, or -1 with an exception set. */
static int count_texts(Counting *state, PyObject *texts, int64_t *starts) {
    starts[0] = 0;
    for (Py_ssize_t t = 0; t < PyList_GET_SIZE(texts); t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "word_ngram_counts takes a list of str");
            return -1;
        }
        if (count_text(state, text) < 0) return -1;
        starts[t + 1] = state->n_stored;
    }
    Py_ssize_t stored = state->n_stored * (Py_ssize_t)sizeof(int32_t);
    if (PyByteArray_Resize(state->indices, stored) < 0 || PyByteArray_Resize(state->counts, stored) < 0) return -1;
    return 0;
}

PyDoc_STRVAR(word_ngram_counts_doc,
             "word_ngram_counts(texts, low, high, lead_words, n_buckets, lookup=None) -> (indptr, indices, counts)\n\n"
             "The CSR rows of hashing.term_counts for word and lead n-grams: bytearrays of int64 row\n"
             "starts, int32 buckets (sorted in each row) and int32 counts. With `lookup` (a buffer of\n"
             "n_buckets int32: each bucket's column, -1 where it was not kept, increasing with the bucket),\n"
             "the rows are over those columns, the buckets not kept left out.");

static PyObject *word_ngram_counts(PyObject *self, PyObject *args) {
    PyObject *texts, *lookup_object = Py_None;
    Counting state = {0};
    unsigned long long n_buckets;
    if (!PyArg_ParseTuple(args, "O!lllK|O", &PyList_Type, &texts, &state.low, &state.high, &state.lead_words,
                          &n_buckets, &lookup_object))
        return NULL;
    if (state.low < 1 || state.high < state.low || state.lead_words < 0 || n_buckets < 1 ||
        n_buckets > 0x7FFFFFFFULL) {
        PyErr_SetString(PyExc_ValueError, "word_ngram_counts: n-gram range, lead words or buckets out of bounds");
        return NULL;
    }
    state.n_buckets = state.n_indices = (uint64_t)n_buckets;
    Py_buffer lookup = {0};
    if (lookup_object != Py_None) {
        if (PyObject_GetBuffer(lookup_object, &lookup, PyBUF_C_CONTIGUOUS) < 0) return NULL;
        if (lookup.len != (Py_ssize_t)(n_buckets * sizeof(int32_t))) {
            PyBuffer_Release(&lookup);
            PyErr_SetString(PyExc_ValueError, "word_ngram_counts: the lookup holds one int32 per bucket");
            return NULL;
        }
        state.lookup = lookup.buf;
        int32_t largest = -1;
        for (uint64_t b = 0; b < n_buckets; b++) largest = state.lookup[b] > largest ? state.lookup[b] : largest;
        state.n_indices = (uint64_t)largest + 1;
    }
    Py_ssize_t n_texts = PyList_GET_SIZE(texts);
    PyObject *indptr = PyByteArray_FromStringAndSize(NULL, (n_texts + 1) * (Py_ssize_t)sizeof(int64_t));
    state.indices = PyByteArray_FromStringAndSize(NULL, 0);
    state.counts = PyByteArray_FromStringAndSize(NULL, 0);
    PyObject *result = NULL;
    if (indptr != NULL && state.indices != NULL && state.counts != NULL &&
        count_texts(&state, texts, (int64_t *)PyByteArray_AS_STRING(indptr)) == 0)
        result = PyTuple_Pack(3, indptr, state.indices, state.counts);
    if (lookup_object != Py_None) PyBuffer_Release(&lookup);
    PyMem_Free(state.words.items);
    PyMem_Free(state.lead.items);
    PyMem_Free(state.grams.items);
    PyMem_Free(state.terms.items);
    Py_XDECREF(indptr);
    Py_XDECREF(state.indices);
    Py_XDECREF(state.counts);
    return result;
}

/* char_map's table: for each code point of the BMP, -1 to delete it, else the code point it becomes. */
#define BMP 0x10000

PyDoc_STRVAR(char_map_doc,
             "char_map(text, table) -> str\n\n"
             "Each character of the BMP through `table` (a buffer of 65,536 int32: -1 deletes the character,\n"
             "else the code point it becomes); characters beyond the BMP are kept.");

static PyObject *char_map(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Uy*", &text, &table)) return NULL;
    if (table.len != BMP * (Py_ssize_t)sizeof(int32_t)) {
        PyBuffer_Release(&table);
        PyErr_SetString(PyExc_ValueError, "char_map: the table holds 65,536 int32");
        return NULL;
    }
    const int32_t *map = table.buf;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text), kept = 0, changed = 0;
    Py_UCS4 max_char = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        int32_t to = c < BMP ? map[c] : (int32_t)c;
        changed += to != (int32_t)c;
        if (to >= 0) {
            kept++;
            if ((Py_UCS4)to > max_char) max_char = (Py_UCS4)to;
        }
    }
    if (!changed) {
        PyBuffer_Release(&table);
        Py_INCREF(text);
        return text;
    }
    PyObject *result = PyUnicode_New(kept, max_char);
    if (result != NULL) {
        int out_kind = PyUnicode_KIND(result);
        void *out = PyUnicode_DATA(result);
        Py_ssize_t j = 0;
        for (Py_ssize_t i = 0; i < length; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            int32_t to = c < BMP ? map[c] : (int32_t)c;
            if (to >= 0) PyUnicode_WRITE(out_kind, out, j++, (Py_UCS4)to);
        }
    }
    PyBuffer_Release(&table);
    return result;
}

PyDoc_STRVAR(collapsed_lines_doc,
             "collapsed_lines(text) -> list[str]\n\n"
             "The lines of `text` (as str.splitlines() cuts them), each with its runs of white space made one\n"
             "space and none at its ends (\" \".join(line.split())), the empty ones left out.");

static PyObject *collapsed_lines(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "collapsed_lines takes a str");
        return NULL;
    }
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t length = PyUnicode_GET_LENGTH(arg);
    PyObject *lines = PyList_New(0);
    Py_UCS4 *line = PyMem_Malloc((size_t)(length ? length : 1) * sizeof(Py_UCS4));
    if (lines == NULL || line == NULL) {
        Py_XDECREF(lines);
        PyMem_Free(line);
        return line == NULL ? PyErr_NoMemory() : NULL;
    }
    Py_ssize_t i = 0;
    while (i <= length) {
        Py_ssize_t size = 0;
        int pending_space = 0;
        for (; i < length; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (Py_UNICODE_ISLINEBREAK(c)) {
                if (c == '\r' && i + 1 < length && PyUnicode_READ(kind, data, i + 1) == '\n') i++;
                break;
            }
            if (Py_UNICODE_ISSPACE(c)) {
                pending_space = size > 0;
            } else {
                if (pending_space) line[size++] = ' ';
                pending_space = 0;
                line[size++] = c;
            }
        }
        i++;
        if (size == 0) continue;
        PyObject *kept = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, line, size);
        if (kept == NULL || PyList_Append(lines, kept) < 0) {
            Py_XDECREF(kept);
            Py_DECREF(lines);
            PyMem_Free(line);
            return NULL;
        }
        Py_DECREF(kept);
    }
    PyMem_Free(line);
    return lines;
}

/* The range of letters space_after_punctuation looks for on both sides of a mark (clean._GLUED_PUNCT_RE). */
static inline int is_glue_letter(Py_UCS4 c) { return c >= 0x0621 && c <= 0x064A; }

static inline int is_sentence_mark(Py_UCS4 c) {
    return c == '.' || c == '!' || c == '?' || c == 0x061F || c == 0x060C || c == 0x061B || c == ':';
}

PyDoc_STRVAR(space_after_punctuation_doc,
             "space_after_punctuation(text) -> str\n\n"
             "A space after each sentence mark (. ! ? \u061f \u060c \u061b :) that has an Arabic letter on\n"
             "both sides, as clean._GLUED_PUNCT_RE.sub(r'\\1 ', text) gives it.");

static PyObject *space_after_punctuation(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "space_after_punctuation takes a str");
        return NULL;
    }
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t length = PyUnicode_GET_LENGTH(arg), glued = 0;
    for (Py_ssize_t i = 1; i + 1 < length; i++)
        glued += is_sentence_mark(PyUnicode_READ(kind, data, i)) && is_glue_letter(PyUnicode_READ(kind, data, i - 1)) &&
                 is_glue_letter(PyUnicode_READ(kind, data, i + 1));
    if (!glued) {
        Py_INCREF(arg);
        return arg;
    }
    PyObject *result = PyUnicode_New(length + glued, PyUnicode_MAX_CHAR_VALUE(arg));
    if (result == NULL) return NULL;
    int out_kind = PyUnicode_KIND(result);
    void *out = PyUnicode_DATA(result);
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        PyUnicode_WRITE(out_kind, out, j++, c);
        if (i > 0 && i + 1 < length && is_sentence_mark(c) && is_glue_letter(PyUnicode_READ(kind, data, i - 1)) &&
            is_glue_letter(PyUnicode_READ(kind, data, i + 1)))
            PyUnicode_WRITE(out_kind, out, j++, ' ');
    }
    return result;
}

static PyMethodDef methods[] = {
    {"collapsed_lines", collapsed_lines, METH_O, collapsed_lines_doc},
    {"space_after_punctuation", space_after_punctuation, METH_O, space_after_punctuation_doc},
    {"word_ngram_counts", word_ngram_counts, METH_VARARGS, word_ngram_counts_doc},
    {"char_map", char_map, METH_VARARGS, char_map_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "qism's labeling path in C.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    for (Py_UCS4 c = 0; c < 0x10000; c++) bmp_word_chars[c] = c == '_' || Py_UNICODE_ISALNUM(c);
    return PyModule_Create(&module);
}
