/*
 * alert_router_plugin.h -- the alert-router sink plugin ABI, version 1.
 *
 * This header is the source of truth for the ABI. The Rust SDK in the same crate
 * (`alert-router-plugin`) mirrors it; a plugin may be written against either, in any
 * language that can export C functions.
 *
 * A sink plugin is a shared library (`lib<name>.so`) that exports one function,
 * `alert_router_plugin_v1`, returning a static descriptor. The router loads the
 * library, checks the descriptor, then creates one instance per configured sink and
 * hands it rendered messages to deliver. The router owns everything around delivery:
 * queueing, rate limits, retries with backoff, dead letters, metrics. A plugin makes
 * one attempt per `deliver` call and says how it went.
 *
 * Conventions that hold for every function below:
 *   - Strings are UTF-8 byte slices (pointer + length), NOT NUL-terminated, and are
 *     BORROWED for the duration of the call only. Copy what you keep.
 *   - Data flows back to a caller through an `ar_write_fn` callback that the caller
 *     passes in. The callee calls it (zero, one or more times; the bytes are appended)
 *     before returning; the caller copies the bytes. So memory is always freed by the
 *     side that allocated it and no `free` function crosses the boundary.
 *   - Nothing may unwind across the boundary: catch every exception or panic and
 *     return a failure instead. (The Rust SDK does this for you.)
 *   - Structs carry their own size and only ever grow at the end; a field added
 *     after ABI 1 is labelled "added in ABI n", and one added to ABI 1 after its
 *     first release "added to ABI 1 later". Check `struct_size` before reading a
 *     field that a newer or older peer might not have (AR_HOST_HAS for `ar_host`,
 *     AR_PLUGIN_HAS for `ar_plugin`).
 *
 * A minimal plugin that accepts every message:
 *
 *     #include "alert_router_plugin.h"
 *     #include <stdlib.h>
 *
 *     static void *create(const ar_host *host, const char *settings, size_t len,
 *                         ar_write_fn error, void *error_ctx) {
 *         (void)settings; (void)len; (void)error; (void)error_ctx;
 *         return (void *)host;                     // any non-NULL handle will do
 *     }
 *     static int32_t deliver(void *instance, const char *msg, size_t len,
 *                            uint64_t *retry_after_ms, ar_write_fn reason, void *reason_ctx) {
 *         const ar_host *host = instance;
 *         host->log(host->host_data, AR_LOG_INFO, msg, len);
 *         return AR_OK;
 *     }
 *     static void destroy(void *instance) { (void)instance; }
 *
 *     static const ar_plugin plugin = {
 *         AR_ABI_VERSION, sizeof(ar_plugin), "hello", "0.1.0",
 *         "{\"markup\":\"none\"}", create, deliver, destroy,
 *         NULL,                                    // validate: optional
 *     };
 *     const ar_plugin *alert_router_plugin_v1(void) { return &plugin; }
 *
 * Build it with `cc -shared -fPIC -I <this directory> -o libhello.so hello.c` and put
 * the file in a directory listed under `plugins.dirs` in router.yaml. The file name
 * names the plugin: `libhello.so` is `plugin: hello` (the descriptor's `name` should
 * say the same; the router warns when it does not).
 *
 * In-process: the library runs inside the router's process, with its user and its
 * memory. A crash in a plugin (a NULL write, abort(), an uncaught C++ exception) ends
 * the router; a plugin that blocks holds only its own sink. The router loads a file
 * only when it is whole (its ELF headers fit the file) and when neither the file nor
 * its directory can be written by others (see `plugins.strict_modes` in the README).
 *
 * Threads, per instance:
 *   - `validate` (optional) runs on any thread, with no instance, whenever the router
 *     checks a configuration: `check`, startup, every reload;
 *   - `create` runs on a router thread when the configuration is loaded or reloaded;
 *   - `deliver` runs on the sink's own worker thread, one call at a time;
 *   - `destroy` runs on that same worker thread, after the last `deliver` returned.
 * When a reload changes a sink's settings or plugin file, the new instance is created
 * before the old one is destroyed: the two exist side by side for a moment (their own
 * threads too), but `deliver` is never called on both at once; the worker switches
 * between two deliveries. At shutdown, an instance still inside `deliver` a second
 * after the drain deadline is left as it is: `destroy` is not called and the process
 * exits.
 */
#ifndef ALERT_ROUTER_PLUGIN_H
#define ALERT_ROUTER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. A host refuses a descriptor whose
 * `abi_version` differs from its own and names both versions in the error. */
#define AR_ABI_VERSION 1

/* The name of the one symbol a plugin exports. A later ABI gets a new symbol
 * (`alert_router_plugin_v2`), so a library may export several and old hosts keep
 * finding the one they understand. */
#define AR_ENTRY_SYMBOL "alert_router_plugin_v1"

/* Outcomes of `deliver`. */
#define AR_OK 0    /* delivered; the router marks the message done */
#define AR_RETRY 1 /* not delivered, worth another attempt (e.g. HTTP 429, 5xx, timeout) */
#define AR_FAIL 2  /* not delivered, never will be (e.g. HTTP 400): dead-lettered */

/* Result codes of the host's `query`, `emit`, `render` and `request` (added to ABI 1
 * later).
 * Each failure also writes a one-line message to the caller's `reply`, saying what
 * went wrong and what to do; the code says what kind of failure it is, so a plugin
 * decides by the code and shows the message, and never needs to read the message.
 * A host from before these codes returns 1 (AR_HOST_FAILED) for every failure, and
 * a later host may add codes: treat any non-zero code you do not know as
 * AR_HOST_FAILED. A plugin that only tests for 0 keeps working unchanged. */
#define AR_HOST_OK 0          /* done; `reply` holds the answer */
#define AR_HOST_FAILED 1      /* failed for another reason, which the message gives (a
                               * template that does not render, a disk error); the
                               * same call may fail again */
#define AR_HOST_BAD_REQUEST 2 /* the call is wrong: a parameter the resource does not
                               * take or a bad value, JSON that is not an object or not
                               * a valid event, a NULL `host_data`; fix the call, it
                               * fails the same way every time */
#define AR_HOST_NOT_FOUND 3   /* what the call names does not exist: an unknown
                               * resource, a template the operator has not written */
#define AR_HOST_UNAVAILABLE 4 /* the router cannot do it now (it is starting, stopping
                               * or reloading, or its outbox is full); the same call
                               * may succeed later. Also every call made after the
                               * instance's `destroy` returned (or its `create`
                               * refused), which never succeeds: see `ar_host` */

/* Levels for `ar_host.log`. */
#define AR_LOG_ERROR 1
#define AR_LOG_WARN 2
#define AR_LOG_INFO 3
#define AR_LOG_DEBUG 4
#define AR_LOG_TRACE 5

/* Receives bytes handed back across the boundary. `ctx` is the pointer the caller
 * passed next to the callback. The bytes are borrowed for this call only; each call
 * appends to what earlier calls wrote. */
typedef void (*ar_write_fn)(void *ctx, const char *bytes, size_t len);

/*
 * The host's services, passed to `create`. The table and `host_data` stay valid
 * from the moment `create` is called for the life of the process: the router never
 * frees them, so a thread of the plugin's that outlives its instance (one `destroy`
 * failed to stop) reads no freed memory. Every function in it is thread-safe: a
 * plugin may call it from `create`, `deliver`, or any thread of its own, including
 * several at once.
 *
 * After `destroy` returns (or `create` refused), the table is ended: `query`, `emit`,
 * `render` and `request` return AR_HOST_UNAVAILABLE with a message saying the sink's
 * instance was destroyed and the call came from a thread that outlived it; `set_health` is
 * ignored; `log` still writes to the router's log, tagged with the sink's name and
 * marked as logged after the instance ended (the line is the operator's clue to the
 * leaked thread). A call in progress when `destroy` returns finishes normally.
 * Routers built before this promise freed the table when `destroy` returned: stop
 * and join your threads in `destroy` regardless.
 */
typedef struct ar_host {
    /* sizeof(ar_host) as the host compiled it. */
    uint32_t struct_size;

    /* Opaque; pass it back as the first argument of every function below. */
    void *host_data;

    /* Required. Writes `msg` to the router's log at `level` (AR_LOG_*), tagged
     * with the sink's name. Never pass secrets: the router cannot redact them. */
    void (*log)(void *host_data, int32_t level, const char *msg, size_t len);

    /* Required. Reads router data as JSON. `path` names a resource of the
     * router's HTTP API below /v1, with an optional query string:
     *   "status", "state/portfolio", "state/positions", "state/trades?limit=10",
     *   "state/performance", "state/equity", "silences", "alerts";
     * and one of the host's own: "delivered?limit=N" (default 100, at most 10000),
     * this sink's latest delivered messages that the outbox still keeps
     * (storage.keep_delivered), oldest first, each the object `deliver` received;
     * a plugin that keeps a history in memory fills it again from there.
     * Returns AR_HOST_OK and writes the JSON answer to `reply`, or returns another
     * AR_HOST_* code and writes a one-line error message to `reply`:
     * AR_HOST_NOT_FOUND for a resource the router does not have,
     * AR_HOST_BAD_REQUEST for a parameter it does not take or a bad value
     * ("state/trades?limit=ten"), AR_HOST_UNAVAILABLE while the router starts or
     * stops, AR_HOST_FAILED when reading its data failed. */
    int32_t (*query)(void *host_data, const char *path, size_t path_len, ar_write_fn reply,
                     void *reply_ctx);

    /* Required. Posts an event back into the router, exactly as `POST /v1/events`
     * would (one JSON object; `source` defaults to the sink's name). Use it for
     * events a plugin originates, such as a command a user sent to a bot.
     * Returns AR_HOST_OK and writes `{"accepted":1,"ids":[...]}` to `reply`, or
     * returns another AR_HOST_* code and writes the reason the event was refused:
     * AR_HOST_BAD_REQUEST for JSON that is not a valid event (the reason names the
     * field), AR_HOST_UNAVAILABLE when the router cannot take it now (starting or
     * stopping, the outbox full); nothing was accepted then, so emit it again later. */
    int32_t (*emit)(void *host_data, const char *event_json, size_t len, ar_write_fn reply,
                    void *reply_ctx);

    /* Required. Renders one of this sink's templates, so that what a plugin says on
     * its own initiative (a bot's answer to a command) is worded by templates the
     * operator edits, like every notification. `name` is looked up as for messages:
     * templates/<sink>/<name>.yaml, then templates/<plugin>/<name>.yaml (no default
     * fallback). `context_json` is a JSON object whose keys become template variables,
     * next to `sink` and `now`. Returns AR_HOST_OK and writes the rendered payload
     * (JSON) to `reply`, or returns another AR_HOST_* code and writes why it could
     * not: AR_HOST_NOT_FOUND when there is no such template (the message says which
     * file to add), AR_HOST_BAD_REQUEST when `context_json` is not a JSON object,
     * AR_HOST_FAILED for a template error (with its file:line:col),
     * AR_HOST_UNAVAILABLE while the sink is not running yet or any more (a plugin
     * rendering from `create`, or after a reload removed its sink). */
    int32_t (*render)(void *host_data, const char *name, size_t name_len,
                      const char *context_json, size_t context_len, ar_write_fn reply,
                      void *reply_ctx);

    /* Optional to call; added to ABI 1 later, so check AR_HOST_HAS(host, set_health)
     * first: an older host's table ends before it. Tells the router how the sink is
     * doing outside any delivery, for a plugin that checks its upstream by itself (a
     * login when it starts, Telegram's getMe). `healthy` is 1 when the check passed,
     * 0 when it failed; then `reason` is a one-line explanation, shown as the sink's
     * `last_error` in /v1/status, so keep secrets out of it (it is ignored for 1).
     * Deliveries say how the sink is doing too, and /v1/status shows whichever came
     * last: a delivered message marks the sink healthy again, a failed one unhealthy.
     * A report made during `create` shows once the router runs the instance; the
     * reports of an instance a failed reload discards are dropped with it. */
    void (*set_health)(void *host_data, int32_t healthy, const char *reason,
                       size_t reason_len);

    /* Optional to call; added to ABI 1 later, so check AR_HOST_HAS(host, request)
     * first: an older host's table ends before it (tell the user the router is too old
     * for what they asked). Changes router data, as a write to the router's HTTP API
     * below /v1 would, for a plugin that lets its users act on the router (a bot's
     * /silence). `method` is "POST" or "DELETE" (upper case); `path` names the resource,
     * without a query string; `body` is the JSON the HTTP API takes (empty, length 0,
     * when the method takes none). The resources:
     *   POST silences         sets a silence; `body` as POST /v1/silences takes it, e.g.
     *                         {"matchers": "type=error, labels.exchange=binance",
     *                          "duration": "2h", "created_by": "@ana", "comment": "..."}
     *                         (matchers as text or a list; "id" to change a silence);
     *   DELETE silences/<id>  expires silence <id> now (a pending one never starts).
     * Both answer with the silence, as the HTTP API does; `query("silences")` lists them.
     * The router logs every change with the sink's name; say who made it in the body
     * (`created_by`), and let only the users who may (a bot's admins) make one.
     * Returns AR_HOST_OK and writes the JSON answer to `reply`, or returns another
     * AR_HOST_* code and writes a one-line message to `reply`:
     * AR_HOST_NOT_FOUND for a resource or an id the router does not have,
     * AR_HOST_BAD_REQUEST for a body the router refuses (the reason names the field:
     * a matcher that does not parse, a duration missing) or a method or parameter the
     * resource does not take, AR_HOST_UNAVAILABLE while the router starts or stops,
     * AR_HOST_FAILED when storing the change failed. */
    int32_t (*request)(void *host_data, const char *method, size_t method_len,
                       const char *path, size_t path_len, const char *body, size_t body_len,
                       ar_write_fn reply, void *reply_ctx);
} ar_host;

/* Whether the host's table has `field`: a field added to ar_host after ABI 1's first
 * release is only there when the host's `struct_size` covers it. */
#define AR_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(ar_host, field) + sizeof((host)->field))

/*
 * The descriptor returned by the entry symbol. It must stay valid (typically a
 * `static const`) for as long as the library is loaded; the host never unloads a
 * library once it has created an instance from it.
 */
typedef struct ar_plugin {
    /* Must be AR_ABI_VERSION. */
    uint32_t abi_version;

    /* sizeof(ar_plugin) as the plugin compiled it. The host refuses a descriptor
     * smaller than the ABI 1 size (up to and including `destroy`). */
    uint32_t struct_size;

    /* NUL-terminated, static. `name` is the plugin's name as sinks refer to it in
     * router.yaml (`plugin: <name>`); it should match the file name lib<name>.so. */
    const char *name;
    const char *version;

    /* NUL-terminated, static JSON object describing the plugin:
     *   "markup":   how the router escapes values interpolated into this plugin's
     *               templates: "html" (Telegram), "markdown" (Discord),
     *               "mrkdwn" (Slack) or "none" (JSON webhooks, console). Required.
     *   "settings": optional; an object mapping each setting name to
     *               {"type": "string|number|integer|boolean|array|object" (or a
     *                list of them, e.g. ["string", "number"]),
     *                "required": bool, "secret": bool, "description": "..."}.
     *               When present it lists every setting the plugin takes: the
     *               router refuses any other (a typo), a value of another type and a
     *               missing required one before `create` is called, pointing at the
     *               place in router.yaml. Without it, only `create` judges the
     *               settings. The router never logs or shows a setting marked secret.
     *   "description": optional one-line description. */
    const char *manifest;

    /* Required. Called by the router once per sink that uses this plugin, when the
     * configuration is loaded or reloaded, on a router thread (never the async
     * runtime). `settings_json` is the sink's `settings` as a JSON object.
     * Validate them here (as `validate` does, which has already passed when the
     * plugin has one); start any threads the plugin needs.
     * Returns an opaque, non-NULL instance handle, or NULL after writing a one-line
     * reason to `error` (shown to the operator as "create refused the settings"). */
    void *(*create)(const ar_host *host, const char *settings_json, size_t settings_len,
                    ar_write_fn error, void *error_ctx);

    /* Required. Delivers one message, making exactly one attempt. Called on a
     * thread dedicated to the sink, never concurrently for the same instance, in
     * FIFO order, and never after `destroy`. Blocking is fine; sleeping to retry is
     * not (return AR_RETRY and the router waits, honouring its rate limit).
     *
     * `message_json` is an object:
     *   {"id": "<message id, stable across attempts>", "sink": "<sink name>",
     *    "attempt": 1, "payload": <the rendered template>, "event": <the event>}
     *
     * Returns AR_OK, AR_RETRY or AR_FAIL. For AR_RETRY, set `*retry_after_ms` to
     * the delay the upstream asked for (e.g. a 429's Retry-After); the whole sink
     * pauses that long. Leave it 0 to let the router pick an exponential backoff.
     * For AR_RETRY and AR_FAIL, write a one-line reason to `reason`; it is shown in
     * /v1/status and in the dead letters, so keep secrets out of it. */
    int32_t (*deliver)(void *instance, const char *message_json, size_t message_len,
                       uint64_t *retry_after_ms, ar_write_fn reason, void *reason_ctx);

    /* Required. Called once per instance when its sink is removed, reconfigured
     * or the router stops, after the last `deliver` has returned. Stop and join
     * every thread the instance started, and free what it owns. After this
     * returns the `ar_host` table passed to `create` stays valid but is ended:
     * calls through it fail with AR_HOST_UNAVAILABLE (see `ar_host`). */
    void (*destroy)(void *instance);

    /* Optional (NULL allowed); added to ABI 1 later, so a host reads it only when the
     * descriptor's `struct_size` covers it (AR_PLUGIN_HAS): a plugin built before it
     * keeps loading, and its settings are judged by `create` alone.
     * Judges `settings_json` (the same object `create` gets) without starting anything:
     * returns AR_OK when `create` would accept them, or AR_FAIL after writing a one-line
     * reason to `error`; start it with `settings.<name>: ` and the router shows it at
     * that setting's place in router.yaml (else at the sink's `settings:`). The router
     * calls it from `alert-router check`, at startup and at every reload, before any
     * `create`, so a setting a plugin refuses is a config error everywhere alike.
     * Static checks only: parse URLs and addresses, check value ranges and that paths
     * exist and are readable. It must have NO side effects (no socket bound, no file
     * written or created, no thread started, nothing kept), because it may be called
     * many times, from any thread, several at once, and with no instance. What only
     * running can tell (a port in use, an unreachable server) stays in `create`.
     * `create` should make the same checks, so the two never disagree. */
    int32_t (*validate)(const char *settings_json, size_t settings_len, ar_write_fn error,
                        void *error_ctx);
} ar_plugin;

/* Whether the descriptor has `field`: a field added to ar_plugin after ABI 1's first
 * release is only there when the plugin's `struct_size` covers it. */
#define AR_PLUGIN_HAS(plugin, field) \
    ((plugin)->struct_size >= offsetof(ar_plugin, field) + sizeof((plugin)->field))

/* The entry symbol every plugin exports. */
const ar_plugin *alert_router_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* ALERT_ROUTER_PLUGIN_H */
