/*
 * The parser's fast path in C: match each line against the contract's one-producer shape and
 * locate its field values, without a regex engine's capture machinery.
 *
 * `fast_shape.py` compiles the contract into a small program of tokens; this file runs it over
 * an Arrow large_string array's buffers and returns, per field, Arrow string views that point
 * into the lines' own data buffer, so no value is copied. It accepts exactly what the regex
 * in `parsing.py` accepts (the tests compare the two on generated and mutated lines), and it
 * only reads the buffers it is given: every access is bounds-checked against the line's end.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Program tokens: a literal to match (length byte, then its bytes), or a value for a field. */
#define OP_LITERAL 'L'
#define OP_STRING 'S'
#define OP_INTEGER 'I'
#define VIEW_BYTES 16
#define INLINE_BYTES 12
#define MAX_FIELDS 255

static inline const uint8_t *skip_space(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    return p;
}

/* The first byte from `p` that ends a JSON string without escapes: a quote, a backslash or a
 * control character; `end` when there is none. Sixteen bytes at a time where SSE2 is there. */
static inline const uint8_t *string_end(const uint8_t *p, const uint8_t *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1f);
    while (end - p >= 16) {
        const __m128i bytes = _mm_loadu_si128((const __m128i *)p);
        /* max(b, 0x1f) == 0x1f exactly when b <= 0x1f, unsigned. */
        const __m128i stop = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)),
            _mm_cmpeq_epi8(_mm_max_epu8(bytes, control), control));
        const int mask = _mm_movemask_epi8(stop);
        if (mask)
            return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20)
        p++;
    return p;
}

/* Match one line; on success `starts` and `lengths` hold each field's value. */
static int match_line(const uint8_t *prog, Py_ssize_t prog_len, const uint8_t *p,
                      const uint8_t *end, const uint8_t **starts, int32_t *lengths)
{
    Py_ssize_t pc = 0;
    while (pc < prog_len) {
        const uint8_t op = prog[pc];
        p = skip_space(p, end);
        if (op == OP_LITERAL) {
            const Py_ssize_t n = prog[pc + 1];
            if (end - p < n || memcmp(p, prog + pc + 2, (size_t)n) != 0)
                return 0;
            p += n;
            pc += 2 + n;
        } else if (op == OP_STRING) {
            const uint8_t field = prog[pc + 1];
            if (p >= end || *p != '"')
                return 0;
            const uint8_t *value = ++p;
            /* JSON without escapes: no quote, backslash or control character inside. */
            p = string_end(p, end);
            if (p >= end || *p != '"')
                return 0;
            starts[field] = value;
            lengths[field] = (int32_t)(p - value);
            p++;
            pc += 2;
        } else if (op == OP_INTEGER) {
            const uint8_t field = prog[pc + 1];
            const uint8_t *value = p;
            /* A canonical integer literal: 0, or an optional minus and no leading zero. */
            if (p < end && *p == '0') {
                p++;
            } else {
                if (p < end && *p == '-')
                    p++;
                if (p >= end || *p < '1' || *p > '9')
                    return 0;
                p++;
                while (p < end && *p >= '0' && *p <= '9')
                    p++;
            }
            starts[field] = value;
            lengths[field] = (int32_t)(p - value);
            pc += 2;
        } else {
            return 0;
        }
    }
    return skip_space(p, end) == end;
}

static inline void write_view(uint8_t *view, const uint8_t *data, const uint8_t *value,
                              int32_t length)
{
    memset(view, 0, VIEW_BYTES);
    memcpy(view, &length, 4);
    if (length <= INLINE_BYTES) {
        memcpy(view + 4, value, (size_t)length);
    } else {
        const int32_t buffer_index = 0;
        const int32_t offset = (int32_t)(value - data);
        memcpy(view + 4, value, 4);
        memcpy(view + 8, &buffer_index, 4);
        memcpy(view + 12, &offset, 4);
    }
}

static int check_program(const Py_buffer *prog, int fields)
{
    const uint8_t *code = prog->buf;
    Py_ssize_t pc = 0;
    while (pc < prog->len) {
        if (pc + 1 >= prog->len)
            return 0;
        if (code[pc] == OP_LITERAL) {
            pc += 2 + code[pc + 1];
            if (pc > prog->len)
                return 0;
        } else if (code[pc] == OP_STRING || code[pc] == OP_INTEGER) {
            if (code[pc + 1] >= fields)
                return 0;
            pc += 2;
        } else {
            return 0;
        }
    }
    return 1;
}

PyDoc_STRVAR(locate_doc,
             "locate(program, fields, offsets, data, first, count) -> (matched, validity, views)\n\n"
             "Run `program` over lines first..first+count of a large_string array given as its\n"
             "int64 offsets buffer and data buffer. Returns how many lines matched, a validity\n"
             "bitmap (bit set where the line matched) and one bytes object of string views per\n"
             "field, pointing into `data` (buffer index 0).");

static PyObject *locate(PyObject *self, PyObject *args)
{
    Py_buffer prog = {0}, offsets = {0}, data = {0};
    int fields = 0;
    Py_ssize_t first = 0, count = 0;
    PyObject *validity = NULL, *views = NULL, *result = NULL;
    uint8_t **view_ptrs = NULL;
    const uint8_t **starts = NULL;
    int32_t *lengths = NULL;
    Py_ssize_t matched = 0;
    int bad_offsets = 0;

    if (!PyArg_ParseTuple(args, "y*iy*y*nn", &prog, &fields, &offsets, &data, &first, &count))
        return NULL;
    if (fields < 1 || fields > MAX_FIELDS || !check_program(&prog, fields)) {
        PyErr_SetString(PyExc_ValueError, "malformed shape program");
        goto done;
    }
    if (first < 0 || count < 0 || offsets.len / 8 < first + count + 1) {
        PyErr_SetString(PyExc_ValueError, "offsets buffer shorter than the lines asked for");
        goto done;
    }
    if (data.len > INT32_MAX) {
        /* String views address their buffer with 32-bit offsets. */
        PyErr_SetString(PyExc_OverflowError, "data buffer over 2 GiB");
        goto done;
    }
    validity = PyBytes_FromStringAndSize(NULL, (count + 7) / 8);
    views = PyList_New(fields);
    view_ptrs = PyMem_Calloc((size_t)fields, sizeof(uint8_t *));
    starts = PyMem_Calloc((size_t)fields, sizeof(uint8_t *));
    lengths = PyMem_Calloc((size_t)fields, sizeof(int32_t));
    if (validity == NULL || views == NULL || view_ptrs == NULL || starts == NULL ||
        lengths == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (int f = 0; f < fields; f++) {
        PyObject *column = PyBytes_FromStringAndSize(NULL, count * VIEW_BYTES);
        if (column == NULL)
            goto done;
        PyList_SET_ITEM(views, f, column);
        view_ptrs[f] = (uint8_t *)PyBytes_AS_STRING(column);
    }

    {
        const int64_t *line_offsets = (const int64_t *)offsets.buf + first;
        const uint8_t *bytes = data.buf;
        const uint8_t *code = prog.buf;
        uint8_t *bits = (uint8_t *)PyBytes_AS_STRING(validity);
        memset(bits, 0, (size_t)((count + 7) / 8));
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < count; i++) {
            const int64_t start = line_offsets[i], stop = line_offsets[i + 1];
            if (start < 0 || stop < start || stop > data.len) {
                bad_offsets = 1;
                break;
            }
            if (match_line(code, prog.len, bytes + start, bytes + stop, starts, lengths)) {
                matched++;
                bits[i >> 3] |= (uint8_t)(1u << (i & 7));
                for (int f = 0; f < fields; f++)
                    write_view(view_ptrs[f] + i * VIEW_BYTES, bytes, starts[f], lengths[f]);
            } else {
                for (int f = 0; f < fields; f++)
                    memset(view_ptrs[f] + i * VIEW_BYTES, 0, VIEW_BYTES);
            }
        }
        Py_END_ALLOW_THREADS
    }
    if (bad_offsets) {
        PyErr_SetString(PyExc_ValueError, "line offsets outside the data buffer");
        goto done;
    }
    result = Py_BuildValue("nOO", matched, validity, views);

done:
    Py_XDECREF(validity);
    Py_XDECREF(views);
    PyMem_Free(view_ptrs);
    PyMem_Free((void *)starts);
    PyMem_Free(lengths);
    PyBuffer_Release(&prog);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"locate", locate, METH_VARARGS, locate_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_shape", "The parser's fast path, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__shape(void)
{
    return PyModule_Create(&module);
}
