/*
 * test_plugin.c -- a sink plugin written in C against alert_router_plugin.h alone.
 * The router's plugin ABI tests load it (tests/tests/plugin_abi.rs); tests/build.rs
 * compiles it into libctest.so, again with -DAR_TEST_ABI_VERSION=2 to check that the
 * router refuses another ABI version, and with -DAR_TEST_OLD_DESCRIPTOR as a plugin
 * built before `validate` was appended to the descriptor (its struct_size ends before).
 *
 * Settings: {"path": "<file>"}, the file every call is recorded in (appended; no `"`
 * or `\` in the path, the settings are parsed with strstr). On deliver it appends:
 *   the message JSON, on one line;
 *   "query: <rc> <kind> <answer>"   for query("status");
 *   "emit: <rc> <kind> <answer>"    for emit({"type":"c_plugin_saw","bytes":N});
 *   "render: <rc> <kind> <answer>"  for render("ctest", {});
 *   "request: <rc> <kind> <answer>" for request("POST", "silences", <a silence of
 *                                   type=c_silenced for 1h by ctest>), only when the
 *                                   payload says "request" ("request: absent" on a host
 *                                   whose table ends before `request`);
 * where <kind> names the AR_HOST_* result code (ok, failed, bad_request, not_found,
 * unavailable; any other code is failed, as the header says).
 * Then it answers by what the message's payload contains: "fail" -> AR_FAIL,
 * "retry" -> AR_RETRY after 1500 ms, "bogus" -> 7 (not an AR_* code), else AR_OK.
 * Before any of that, right after the line is appended, the faults of a bad plugin:
 * "segfault" writes through NULL, "abort" aborts, "exit" calls exit(3), "hang" never
 * returns, and "wait-forever" answers AR_RETRY after 10 ms every time.
 * destroy appends "destroyed". validate refuses a missing or empty path, as create does,
 * and writes through NULL for the path "segfault-in-validate".
 */
/* pause() */
#define _POSIX_C_SOURCE 200809L

#include "alert_router_plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AR_TEST_ABI_VERSION
#define AR_TEST_ABI_VERSION AR_ABI_VERSION
#endif

typedef struct {
    const ar_host *host;
    char *path;
} ctest;

/* A growable buffer that the host's replies are written into. */
typedef struct {
    char *bytes;
    size_t len;
    int failed;
} buffer;

static void buffer_write(void *ctx, const char *bytes, size_t len) {
    buffer *b = ctx;
    if (b == NULL || b->failed || len == 0) {
        return;
    }
    char *grown = realloc(b->bytes, b->len + len);
    if (grown == NULL) {
        b->failed = 1;
        return;
    }
    memcpy(grown + b->len, bytes, len);
    b->bytes = grown;
    b->len += len;
}

static void write_text(ar_write_fn write, void *ctx, const char *text) {
    write(ctx, text, strlen(text));
}

/* Appends `len` bytes and a newline to the file; 0 on success. */
static int append_line(const char *path, const char *bytes, size_t len) {
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        return -1;
    }
    int ok = fwrite(bytes, 1, len, f) == len && fputc('\n', f) != EOF;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* The name of a host call's result code. */
static const char *kind_name(int32_t rc) {
    switch (rc) {
    case AR_HOST_OK:
        return "ok";
    case AR_HOST_BAD_REQUEST:
        return "bad_request";
    case AR_HOST_NOT_FOUND:
        return "not_found";
    case AR_HOST_UNAVAILABLE:
        return "unavailable";
    default: /* AR_HOST_FAILED, and codes this plugin does not know */
        return "failed";
    }
}

/* Appends "<label>: <rc> <kind> <reply>" for one host call. */
static void record_answer(const ctest *t, const char *label, int32_t rc, const buffer *reply) {
    size_t cap = strlen(label) + 48 + reply->len;
    char *line = malloc(cap);
    if (line == NULL) {
        return;
    }
    int head = snprintf(line, cap, "%s: %d %s ", label, (int)rc, kind_name(rc));
    if (head < 0) {
        free(line);
        return;
    }
    if (reply->len > 0) {
        memcpy(line + head, reply->bytes, reply->len);
    }
    append_line(t->path, line, (size_t)head + reply->len);
    free(line);
}

/* The string value of "path" in a flat JSON object, malloc'd; NULL if absent. */
static char *settings_path(const char *json, size_t len) {
    char *text = malloc(len + 1);
    if (text == NULL) {
        return NULL;
    }
    memcpy(text, json, len);
    text[len] = '\0';
    char *result = NULL;
    char *key = strstr(text, "\"path\"");
    char *open = key ? strchr(key + 6, '"') : NULL;
    char *close = open ? strchr(open + 1, '"') : NULL;
    if (close != NULL) {
        size_t n = (size_t)(close - open - 1);
        result = malloc(n + 1);
        if (result != NULL) {
            memcpy(result, open + 1, n);
            result[n] = '\0';
        }
    }
    free(text);
    return result;
}

/* Whether `needle` occurs in the message after its "payload" key. */
static int payload_says(const char *msg, size_t len, const char *needle) {
    char *text = malloc(len + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, msg, len);
    text[len] = '\0';
    char *payload = strstr(text, "\"payload\"");
    int found = payload != NULL && strstr(payload, needle) != NULL;
    free(text);
    return found;
}

/* The faults a third-party plugin can have, on demand. Each one that returns leaves
 * AR_RETRY with a wait; the others never return. */
static int misbehave(const char *msg, size_t len, uint64_t *retry_after_ms, ar_write_fn reason,
                     void *reason_ctx) {
    if (payload_says(msg, len, "\"segfault\"")) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
    }
    if (payload_says(msg, len, "\"abort\"")) {
        abort();
    }
    if (payload_says(msg, len, "\"exit\"")) {
        exit(3);
    }
    if (payload_says(msg, len, "\"hang\"")) {
        for (;;) {
            pause();
        }
    }
    if (payload_says(msg, len, "\"wait-forever\"")) {
        if (retry_after_ms != NULL) {
            *retry_after_ms = 10;
        }
        write_text(reason, reason_ctx, "429: always later");
        return 1;
    }
    return 0;
}

/* Sets a silence through `request`, which a host may not have (AR_HOST_HAS). */
static void record_request(const ctest *t) {
    const ar_host *h = t->host;
    if (!AR_HOST_HAS(h, request) || h->request == NULL) {
        const char *absent = "request: absent";
        append_line(t->path, absent, strlen(absent));
        return;
    }
    const char *method = "POST";
    const char *path = "silences";
    const char *body =
        "{\"matchers\":\"type=c_silenced\",\"duration\":\"1h\",\"created_by\":\"ctest\"}";
    buffer reply = {0};
    int32_t rc = h->request(h->host_data, method, strlen(method), path, strlen(path), body,
                            strlen(body), buffer_write, &reply);
    record_answer(t, "request", rc, &reply);
    free(reply.bytes);
}

static void *ctest_create(const ar_host *host, const char *settings, size_t len,
                          ar_write_fn error, void *error_ctx) {
    char *path = settings_path(settings, len);
    if (path == NULL || path[0] == '\0') {
        free(path);
        write_text(error, error_ctx, "settings.path is required: the file to record calls in");
        return NULL;
    }
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        char reason[512];
        snprintf(reason, sizeof reason, "settings.path: cannot open %s: %s", path,
                 strerror(errno));
        free(path);
        write_text(error, error_ctx, reason);
        return NULL;
    }
    fclose(f);
    ctest *t = malloc(sizeof *t);
    if (t == NULL) {
        free(path);
        write_text(error, error_ctx, "out of memory");
        return NULL;
    }
    t->host = host;
    t->path = path;
    const char *hello = "ctest created";
    host->log(host->host_data, AR_LOG_INFO, hello, strlen(hello));
    return t;
}

static int32_t ctest_deliver(void *instance, const char *msg, size_t len,
                             uint64_t *retry_after_ms, ar_write_fn reason, void *reason_ctx) {
    ctest *t = instance;
    const ar_host *h = t->host;
    if (append_line(t->path, msg, len) != 0) {
        write_text(reason, reason_ctx, "cannot append to the record file");
        return AR_RETRY;
    }
    if (misbehave(msg, len, retry_after_ms, reason, reason_ctx)) {
        return AR_RETRY;
    }

    buffer reply = {0};
    const char *status = "status";
    int32_t rc = h->query(h->host_data, status, strlen(status), buffer_write, &reply);
    record_answer(t, "query", rc, &reply);
    free(reply.bytes);

    char event[96];
    int event_len =
        snprintf(event, sizeof event, "{\"type\":\"c_plugin_saw\",\"bytes\":%lu}", (unsigned long)len);
    buffer emitted = {0};
    rc = h->emit(h->host_data, event, (size_t)event_len, buffer_write, &emitted);
    record_answer(t, "emit", rc, &emitted);
    free(emitted.bytes);

    buffer rendered = {0};
    const char *name = "ctest";
    rc = h->render(h->host_data, name, strlen(name), "{}", 2, buffer_write, &rendered);
    record_answer(t, "render", rc, &rendered);
    free(rendered.bytes);

    if (payload_says(msg, len, "\"request\"")) {
        record_request(t);
    }

    if (payload_says(msg, len, "\"fail\"")) {
        write_text(reason, reason_ctx, "the payload asked to fail");
        return AR_FAIL;
    }
    if (payload_says(msg, len, "\"retry\"")) {
        if (retry_after_ms != NULL) {
            *retry_after_ms = 1500;
        }
        write_text(reason, reason_ctx, "the payload asked to retry");
        return AR_RETRY;
    }
    if (payload_says(msg, len, "\"bogus\"")) {
        write_text(reason, reason_ctx, "made up a return code");
        return 7;
    }
    return AR_OK;
}

static void ctest_destroy(void *instance) {
    ctest *t = instance;
    if (t == NULL) {
        return;
    }
    const char *last = "destroyed";
    append_line(t->path, last, strlen(last));
    free(t->path);
    free(t);
}

#ifndef AR_TEST_OLD_DESCRIPTOR
/* Only the static check `create` makes first; no file is opened here. */
static int32_t ctest_validate(const char *settings, size_t len, ar_write_fn error,
                              void *error_ctx) {
    char *path = settings_path(settings, len);
    int ok = path != NULL && path[0] != '\0';
    int crash = ok && strcmp(path, "segfault-in-validate") == 0;
    free(path);
    if (crash) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
    }
    if (!ok) {
        write_text(error, error_ctx, "settings.path is required: the file to record calls in");
        return AR_FAIL;
    }
    return AR_OK;
}
#define CTEST_SIZE sizeof(ar_plugin)
#else
/* A descriptor as built before `validate` was appended: its struct_size ends before the
 * field, so a host must never call what lies there (this refuses everything to show it). */
static int32_t ctest_validate(const char *settings, size_t len, ar_write_fn error,
                              void *error_ctx) {
    (void)settings;
    (void)len;
    write_text(error, error_ctx, "validate was called past the descriptor's struct_size");
    return AR_FAIL;
}
#define CTEST_SIZE offsetof(ar_plugin, validate)
#endif

static const ar_plugin descriptor = {
    AR_TEST_ABI_VERSION,
    CTEST_SIZE,
    "ctest",
    "0.3.1",
    "{\"markup\":\"html\",\"description\":\"C test plugin: records every call in a file\","
    "\"settings\":{"
    "\"path\":{\"type\":\"string\",\"required\":true,\"description\":\"file to record calls in\"},"
    "\"token\":{\"type\":\"string\",\"secret\":true,\"description\":\"ignored; tests redaction\"}}}",
    ctest_create,
    ctest_deliver,
    ctest_destroy,
    ctest_validate,
};

const ar_plugin *alert_router_plugin_v1(void) { return &descriptor; }
