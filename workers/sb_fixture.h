/*  workers/sb_fixture.h — the builtin tools of the api role: fixtures a
    connector names with "request": {"builtin": "<fixture>"} (see
    connectors/conformance.json) and that the worker runs itself, with no
    upstream. They are the tools the official MCP conformance suite expects:
    plain content (text, image, audio, embedded resource, mixed), an error
    result, log and progress notifications sent 50 ms apart, and questions
    to the client (sampling/createMessage, elicitation/create, roots/list)
    whose answers shape the result — among them the keyed questions of MCP
    2026-07-28's input-required results (test_input_required_result_*,
    test_missing_capability, test_streaming_elicitation), which also run
    for older clients as server requests — and the tools of the tasks
    extension's scenarios (SEP-2663), which send the promote signal
    themselves (sb_worker_job_promote):

      greet               answers "Hello, {name}!" at once; never promotes
      slow_compute        seconds > 0: promotes, answers "Computed {label} in
                          {seconds}s" after that many seconds; 0: at once
      failing_job         promotes, an isError result after SB_FIXTURE_FAIL_MS
      protocol_error_job  promotes, ends with JSON-RPC error -32603 after
                          SB_FIXTURE_RPC_ERROR_MS
      confirm_delete      promotes, asks "confirm" ({confirm: boolean}):
                          "Deleted {filename}" or "Kept {filename}"
      multi_input         promotes, asks "user_name" and "friend_name" ({name:
                          string} each) at once: "Hello, {user} and {friend}!"
      test_tool_with_task asks "user_name" first; once accepted, promotes and
                          greets "(finished as a task)" SB_FIXTURE_TASK_MS later

    Timers run on the worker's reactor; a job's deadline, cancellation or
    input-required result releases its fixture state (and so its timer)
    through sb_fixture_abandon. */
#ifndef SB_FIXTURE_H_INCLUDED
#define SB_FIXTURE_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>

#include "sb_attr.h"
#include "sb_worker.h"

#define SB_FIXTURE_STEP_MS  50      /* gap between a fixture's notifications */
#define SB_FIXTURE_FAIL_MS  1000    /* failing_job's run before its error result */
#define SB_FIXTURE_RPC_ERROR_MS 100 /* protocol_error_job's run before its error */
#define SB_FIXTURE_TASK_MS  300     /* test_tool_with_task's run once promoted */

typedef struct _sb_fixture_t sb_fixture_t;

/*  Creates the fixture runner on `reactor` (borrowed). NULL when out of memory. */
sb_fixture_t *sb_fixture_new (sb_reactor_t *reactor) SB_MUST_USE;

/*  Releases every fixture still running (their jobs' data is cleared, the
    jobs are not answered), nulls the caller's pointer. Idempotent. */
void sb_fixture_destroy (sb_fixture_t **self_p);

/*  True when `name` is a fixture this worker can run. */
bool sb_fixture_known (const char *name);

/*  Runs fixture `name` for `job` with `args` (borrowed JSON object, already
    checked against the tool's inputSchema). Ends the job now or later with
    an MCP CallToolResult (protocol_error_job: with a JSON-RPC error,
    sb_worker_job_fail_rpc). */
void sb_fixture_start (sb_fixture_t *self, sb_worker_job_t *job, const char *name,
                       const json_t *args);

/*  If `job` is running a fixture, releases its state and returns true
    (the job is not answered); false for any other job. */
bool sb_fixture_abandon (sb_fixture_t *self, sb_worker_job_t *job);

#endif
