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

/* Append the bucket of every n-gram of `words`, low <= n <= high (hashing.ngram_hashes); `grams`
 * is scratch space for the n-gram hashes. */
static int add_ngram_buckets(const uint64_t *words, Py_ssize_t n_words, long low, long high, uint64_t n_buckets,
                             Buffer *grams, Buffer *buckets) {
    if (buffer_reserve(grams, n_words) < 0) return -1;
    memcpy(grams->items, words, (size_t)n_words * sizeof(uint64_t));
    for (long n = 1; n <= high && n <= n_words; n++) {
        Py_ssize_t count = n_words - n + 1;
        if (n > 1)
            for (Py_ssize_t i = 0; i < count; i++) grams->items[i] = combine(grams->items[i], words[i + n - 1]);
        if (n >= low) {
            if (buffer_reserve(buckets, buckets->size + count) < 0) return -1;
            for (Py_ssize_t i = 0; i < count; i++) buckets->items[buckets->size++] = grams->items[i] % n_buckets;
        }
    }
    return 0;
}

/* Sort `items` (each below 2**31) by least-significant-digit radix, eight bits a pass, as many passes
 * as `n_buckets` needs: far faster than qsort's comparisons for the few thousand terms of an article. */
static int radix_sort(Buffer *items, Buffer *scratch, uint64_t n_buckets) {
    if (buffer_reserve(scratch, items->size) < 0) return -1;
    uint64_t *from = items->items, *to = scratch->items;
    int passes = 0;
    for (uint64_t range = n_buckets - 1; range; range >>= 8) passes++;
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

typedef struct {
    Buffer words, lead, grams, buckets;
    PyObject *indices, *counts; /* bytearrays of int32 */
    Py_ssize_t n_stored;
} Counting;

/* Sort a text's buckets and store each distinct one with its count (a CSR row, indices sorted). */
static int store_row(Counting *state, uint64_t n_buckets) {
    Buffer *buckets = &state->buckets;
    if (radix_sort(buckets, &state->grams, n_buckets) < 0) return -1;
    Py_ssize_t distinct = 0;
    for (Py_ssize_t i = 0; i < buckets->size; i++) distinct += i == 0 || buckets->items[i] != buckets->items[i - 1];
    Py_ssize_t needed = (state->n_stored + distinct) * (Py_ssize_t)sizeof(int32_t);
    if (PyByteArray_GET_SIZE(state->indices) < needed) {
        Py_ssize_t grown = needed * 2;
        if (PyByteArray_Resize(state->indices, grown) < 0 || PyByteArray_Resize(state->counts, grown) < 0) return -1;
    }
    int32_t *indices = (int32_t *)PyByteArray_AS_STRING(state->indices);
    int32_t *counts = (int32_t *)PyByteArray_AS_STRING(state->counts);
    for (Py_ssize_t i = 0; i < buckets->size; i++) {
        if (i > 0 && buckets->items[i] == buckets->items[i - 1]) {
            counts[state->n_stored - 1]++;
        } else {
            indices[state->n_stored] = (int32_t)buckets->items[i];
            counts[state->n_stored++] = 1;
        }
    }
    return 0;
}

static int count_text(Counting *state, PyObject *text, long low, long high, long lead_words, uint64_t n_buckets) {
    if (text_word_hashes(text, &state->words) < 0) return -1;
    state->buckets.size = 0;
    if (add_ngram_buckets(state->words.items, state->words.size, low, high, n_buckets, &state->grams,
                          &state->buckets) < 0)
        return -1;
    if (lead_words > 0) {
        Py_ssize_t n_lead = state->words.size < lead_words ? state->words.size : lead_words;
        if (buffer_reserve(&state->lead, n_lead) < 0) return -1;
        for (Py_ssize_t i = 0; i < n_lead; i++) state->lead.items[i] = mix(state->words.items[i] ^ LEAD_SALT);
        if (add_ngram_buckets(state->lead.items, n_lead, low, high, n_buckets, &state->grams, &state->buckets) < 0)
            return -1;
    }
    return store_row(state, n_buckets);
}

PyDoc_STRVAR(word_ngram_counts_doc,
             "word_ngram_counts(texts, low, high, lead_words, n_buckets) -> (indptr, indices, counts)\n\n"
             "The CSR rows of hashing.term_counts for word and lead n-grams: bytearrays of int64 row\n"
             "starts, int32 buckets (sorted in each row) and int32 counts.");

static PyObject *word_ngram_counts(PyObject *self, PyObject *args) {
    PyObject *texts;
    long low, high, lead_words;
    unsigned long long n_buckets;
    if (!PyArg_ParseTuple(args, "O!lllK", &PyList_Type, &texts, &low, &high, &lead_words, &n_buckets)) return NULL;
    if (low < 1 || high < low || lead_words < 0 || n_buckets < 1 || n_buckets > 0x7FFFFFFFULL) {
        PyErr_SetString(PyExc_ValueError, "word_ngram_counts: n-gram range, lead words or buckets out of bounds");
        return NULL;
    }
    Py_ssize_t n_texts = PyList_GET_SIZE(texts);
    Counting state = {0};
    PyObject *indptr = PyByteArray_FromStringAndSize(NULL, (n_texts + 1) * (Py_ssize_t)sizeof(int64_t));
    state.indices = PyByteArray_FromStringAndSize(NULL, 0);
    state.counts = PyByteArray_FromStringAndSize(NULL, 0);
    PyObject *result = NULL;
    if (indptr == NULL || state.indices == NULL || state.counts == NULL) goto done;
    int64_t *starts = (int64_t *)PyByteArray_AS_STRING(indptr);
    starts[0] = 0;
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "word_ngram_counts takes a list of str");
            goto done;
        }
        if (count_text(&state, text, low, high, lead_words, (uint64_t)n_buckets) < 0) goto done;
        starts[t + 1] = state.n_stored;
    }
    Py_ssize_t stored = state.n_stored * (Py_ssize_t)sizeof(int32_t);
    if (PyByteArray_Resize(state.indices, stored) < 0 || PyByteArray_Resize(state.counts, stored) < 0) goto done;
    result = PyTuple_Pack(3, indptr, state.indices, state.counts);
done:
    PyMem_Free(state.words.items);
    PyMem_Free(state.lead.items);
    PyMem_Free(state.grams.items);
    PyMem_Free(state.buckets.items);
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

static PyMethodDef methods[] = {
    {"word_ngram_counts", word_ngram_counts, METH_VARARGS, word_ngram_counts_doc},
    {"char_map", char_map, METH_VARARGS, char_map_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "qism's labeling path in C.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    for (Py_UCS4 c = 0; c < 0x10000; c++) bmp_word_chars[c] = c == '_' || Py_UNICODE_ISALNUM(c);
    return PyModule_Create(&module);
}
