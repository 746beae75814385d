// The only file that knows N-API. Converts arguments, calls into the native
// library, and turns Status values into plain error objects that
// lib/log/wal.ts wraps in TidemarkError. Arguments are validated in TypeScript.
#include <napi.h>
#include <uv.h>

#include <string.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bench_sync.h"
#include "crc32c.h"
#include "file.h"
#include "limits.h"
#include "log.h"

namespace {

using tidemark::BatchReport;
using tidemark::Code;
using tidemark::Log;
using tidemark::Status;

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk: return "TM_OK";
    case Code::kCorruption: return "TM_CORRUPTION";
    case Code::kIo: return "TM_IO";
    case Code::kNoSpace: return "TM_NOSPC";
    case Code::kLocked: return "TM_LOCKED";
    case Code::kClosed: return "TM_CLOSED";
    case Code::kPoisoned: return "TM_POISONED";
    case Code::kDirectUnsupported: return "TM_DIRECT_UNSUPPORTED";
    case Code::kInvalidArgument: return "TM_INVALID_ARGUMENT";
    case Code::kOutOfRange: return "TM_OUT_OF_RANGE";
    case Code::kBusy: return "TM_BUSY";
    case Code::kUringUnsupported: return "TM_URING_UNSUPPORTED";
  }
  return "TM_IO";
}

// { code, message, errno?, errnoNumber?, syscall?, path?, offset? }
Napi::Object status_to_js(Napi::Env env, const Status& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", code_name(s.code));
  o.Set("message", s.message);
  if (s.err != 0) {
    const char* name = strerrorname_np(s.err);
    o.Set("errno", name != nullptr ? name : ("E" + std::to_string(s.err)).c_str());
    o.Set("errnoNumber", s.err);
  }
  if (!s.syscall.empty()) o.Set("syscall", s.syscall);
  if (!s.path.empty()) o.Set("path", s.path);
  if (s.offset >= 0) o.Set("offset", static_cast<double>(s.offset));
  return o;
}

class LogWrap;

// What the per-log fast `append` function needs. It holds its own references:
// the function object could in principle outlive its LogWrap.
struct FastAppendData {
  std::shared_ptr<Log> log;
  std::shared_ptr<Status> last_error;
};

// append(data: Uint8Array) -> index, or -code (details from lastError()).
// Installed on each log object as an own property with its data pointer
// (LogWrap::InstallFastAppend), in raw N-API: the hot call of every append, and
// an ObjectWrap method pays napi_unwrap (~800 instructions, more than the rest
// of the call) plus a second napi_get_typedarray_info. Arguments are validated in TypeScript.
napi_value FastAppend(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value arg = nullptr;
  void* data = nullptr;
  napi_get_cb_info(env, cbinfo, &argc, &arg, nullptr, &data);
  auto* fast = static_cast<FastAppendData*>(data);
  napi_typedarray_type type;
  size_t length = 0;
  void* bytes = nullptr;
  double result = -static_cast<double>(Code::kInvalidArgument);
  if (argc >= 1 && napi_get_typedarray_info(env, arg, &type, &length, &bytes, nullptr, nullptr) == napi_ok) {
    Status st;
    uint64_t index = fast->log->append(static_cast<const uint8_t*>(bytes), static_cast<uint32_t>(length), &st);
    if (index == 0) {
      *fast->last_error = st;
      result = -static_cast<double>(st.code);
    } else {
      result = static_cast<double>(index);
    }
  } else {
    *fast->last_error = Status::Make(Code::kInvalidArgument, "append: data must be a Uint8Array");
  }
  napi_value out;
  napi_create_double(env, result, &out);
  return out;
}

// settled(count): JS handled `count` append-settling reports (wal.ts, from
// setImmediate). Raw N-API with the same data pointer as FastAppend: an
// ObjectWrap method unwraps `this`, which fails while a worker is being
// terminated (JS can still run its last setImmediate then), and the failure
// becomes a fatal napi_throw. This call uses no N-API function that needs JS.
napi_value FastSettled(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value arg = nullptr;
  void* data = nullptr;
  napi_get_cb_info(env, cbinfo, &argc, &arg, nullptr, &data);
  double n = 0;
  if (argc >= 1 && napi_get_value_double(env, arg, &n) == napi_ok && n > 0) {
    static_cast<FastAppendData*>(data)->log->reports_settled(static_cast<uint64_t>(n));
  }
  return nullptr;
}

// flush(): io_uring mode (wal.ts calls it from a microtask after the calls of a
// turn, and after each report): submit the next batch or hand the queue to the
// writer thread (Log::uring_flush). Same data pointer as FastAppend.
napi_value FastFlush(napi_env env, napi_callback_info cbinfo) {
  void* data = nullptr;
  napi_get_cb_info(env, cbinfo, nullptr, nullptr, nullptr, &data);
  static_cast<FastAppendData*>(data)->log->uring_flush();
  return nullptr;
}

// Per-environment state (worker_threads safe): the class constructor and the open logs.
struct EnvData {
  Napi::FunctionReference log_ctor;
  std::set<LogWrap*> open_logs;
  bool tearing_down = false;
};

void CallJs(Napi::Env env, Napi::Function callback, LogWrap* context, BatchReport* data);
using Tsfn = Napi::TypedThreadSafeFunction<LogWrap, BatchReport, CallJs>;

class LogWrap : public Napi::ObjectWrap<LogWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeLog",
                       {
                           InstanceMethod<&LogWrap::Append>("append"),
                           InstanceMethod<&LogWrap::AppendMany>("appendMany"),
                           InstanceMethod<&LogWrap::AppendPacked>("appendPacked"),
                           InstanceMethod<&LogWrap::TruncateAfter>("truncateAfter"),
                           InstanceMethod<&LogWrap::TruncateBefore>("truncateBefore"),
                           InstanceMethod<&LogWrap::LastError>("lastError"),
                           InstanceMethod<&LogWrap::Read>("read"),
                           InstanceMethod<&LogWrap::ReadRange>("readRange"),
                           InstanceMethod<&LogWrap::Stats>("stats"),
                           InstanceMethod<&LogWrap::FirstIndex>("firstIndex"),
                           InstanceMethod<&LogWrap::LastIndex>("lastIndex"),
                           InstanceMethod<&LogWrap::BlockBytes>("blockBytes"),
                           InstanceMethod<&LogWrap::TailRepair>("tailRepair"),
                           InstanceMethod<&LogWrap::Close>("close"),
                           InstanceMethod<&LogWrap::Ref>("ref"),
                           InstanceMethod<&LogWrap::Unref>("unref"),
                           InstanceMethod<&LogWrap::Settled>("settled"),
                           InstanceMethod<&LogWrap::Inspect>("inspect"),
                           InstanceMethod<&LogWrap::Io>("io"),
                           InstanceMethod<&LogWrap::IoFallbackReason>("ioFallbackReason"),
                           InstanceMethod<&LogWrap::Flush>("flush"),
                       });
  }

  explicit LogWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LogWrap>(info) {}

  ~LogWrap() override { Teardown(); }

  // Called by the opener once the Log exists.
  void Attach(Napi::Env env, std::shared_ptr<Log> log, Tsfn tsfn, EnvData* env_data, Napi::Function on_report) {
    log_ = std::move(log);
    tsfn_ = tsfn;
    env_data_ = env_data;
    env_data_->open_logs.insert(this);
    if (log_->uses_uring()) StartPoll(env, on_report);
  }

  // io_uring mode: completions arrive on the ring's eventfd, watched here by a
  // uv_poll handle (unreferenced while nothing is pending, like the
  // thread-safe function); each finished batch is reported with one callback.
  void StartPoll(Napi::Env env, Napi::Function on_report) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return;
    auto* poll = new uv_poll_t;
    if (uv_poll_init(loop, poll, log_->uring_event_fd()) != 0) {
      delete poll;
      return;
    }
    poll->data = this;
    poll_ = poll;
    on_report_ = Napi::Persistent(on_report);
    async_context_ = std::make_unique<Napi::AsyncContext>(env, "tidemark.wal.uring");
    env_ = env;
    uv_poll_start(poll_, UV_READABLE, &LogWrap::OnPoll);
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    (void)status;
    (void)events;
    auto* self = static_cast<LogWrap*>(handle->data);
    if (self == nullptr || !self->log_) return;
    std::unique_ptr<BatchReport> report = self->log_->uring_complete();
    if (!report) return;
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    napi_value argv[8];
    ReportArgs(env, *report, argv);
    // MakeCallback: the resolutions' microtasks (and the appends they issue) run
    // when it returns, before the next poll.
    napi_value result;
    napi_value recv = env.Global();  // napi_make_callback wants an object
    if (napi_make_callback(env, *self->async_context_, recv, self->on_report_.Value(), 8, argv, &result) != napi_ok) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
  }

  void StopPoll() {
    if (poll_ == nullptr) return;
    poll_->data = nullptr;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  bool UsesUring() const { return log_ && log_->uses_uring(); }
  Log* log() const { return log_.get(); }

  // One report as the JS callback's arguments:
  // (durableTicket, failedTicket, firstIndex, lastIndex, failure?, commands?, closed, ack)
  static void ReportArgs(Napi::Env env, const BatchReport& report, napi_value* argv) {
    Napi::Value failure = env.Undefined();
    if (report.failed_ticket != 0) failure = status_to_js(env, report.failure);
    Napi::Value commands = env.Undefined();
    if (!report.commands.empty()) {
      Napi::Array arr = Napi::Array::New(env, report.commands.size() * 2);
      uint32_t i = 0;
      for (const auto& c : report.commands) {
        arr.Set(i++, static_cast<double>(c.first));
        arr.Set(i++, c.second.ok() ? env.Null() : Napi::Value(status_to_js(env, c.second)));
      }
      commands = arr;
    }
    argv[0] = Napi::Number::New(env, static_cast<double>(report.durable_ticket));
    argv[1] = Napi::Number::New(env, static_cast<double>(report.failed_ticket));
    argv[2] = Napi::Number::New(env, static_cast<double>(report.first_index));
    argv[3] = Napi::Number::New(env, static_cast<double>(report.last_index));
    argv[4] = failure;
    argv[5] = commands;
    argv[6] = Napi::Boolean::New(env, report.closed);
    argv[7] = Napi::Boolean::New(env, report.ack);
  }

  // Puts the fast `append` (FastAppend) on `obj` as an own property; on failure
  // the prototype's `append` (the same call through ObjectWrap) stays in use.
  // Likewise FastSettled as `settled`.
  void InstallFastAppend(napi_env env, napi_value obj) {
    const std::pair<const char*, napi_callback> fns[] = {
        {"append", FastAppend}, {"settled", FastSettled}, {"flush", FastFlush}};
    for (const auto& [name, cb] : fns) {
      auto* data = new FastAppendData{log_, last_error_};
      napi_value fn;
      if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, data, &fn) != napi_ok ||
          napi_add_finalizer(
              env, fn, data, [](napi_env, void* d, void*) { delete static_cast<FastAppendData*>(d); }, nullptr,
              nullptr) != napi_ok) {
        delete data;
        continue;
      }
      // Defined, not assigned: the prototype's method is read-only, which makes a
      // plain assignment of an own property a silent no-op.
      napi_property_descriptor desc = {name, nullptr, nullptr, nullptr, nullptr, fn, napi_default, nullptr};
      napi_define_properties(env, obj, 1, &desc);
    }
  }

  // The writer said `closed`: join it and drop the thread-safe function.
  void OnClosed() {
    StopPoll();
    if (log_) log_->join();
    if (!tsfn_released_) {
      tsfn_released_ = true;
      tsfn_.Release();
    }
    if (env_data_ != nullptr) env_data_->open_logs.erase(this);
    env_data_ = nullptr;
  }

  // Env teardown or finalization: stop the writer (it drains what is queued) and join.
  void Teardown() {
    if (log_) log_->shutdown();
    StopPoll();
    if (!tsfn_released_ && log_) {
      tsfn_released_ = true;
      tsfn_.Release();
    }
    if (env_data_ != nullptr) {
      if (!env_data_->tearing_down) env_data_->open_logs.erase(this);
      env_data_ = nullptr;
    }
  }

 private:
  Napi::Value Fail(Napi::Env env, const Status& st) {
    *last_error_ = st;
    return Napi::Number::New(env, -static_cast<double>(st.code));
  }

  // append(data: Uint8Array) -> index, or -code (details from lastError()). The
  // fallback of FastAppend (which every opened log normally has as an own property).
  Napi::Value Append(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto view = info[0].As<Napi::Uint8Array>();
    Status st;
    uint64_t index = log_->append(view.Data(), static_cast<uint32_t>(view.ByteLength()), &st);
    if (index == 0) return Fail(env, st);
    return Napi::Number::New(env, static_cast<double>(index));
  }

  // appendMany(datas: Uint8Array[]) -> last index, or -code. Raw N-API in the
  // loop: two calls per element, no wrapper objects.
  Napi::Value AppendMany(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    napi_value arr = info[0];
    uint32_t n = 0;
    napi_get_array_length(env, arr, &n);
    records_.resize(n);
    for (uint32_t i = 0; i < n; i++) {
      napi_value v;
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      napi_get_element(env, arr, i, &v);
      napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr);
      records_[i] = {static_cast<const uint8_t*>(data), static_cast<uint32_t>(length)};
    }
    Status st;
    uint64_t index = log_->append_many(records_, &st);
    if (index == 0) return Fail(info.Env(), st);
    return Napi::Number::New(env, static_cast<double>(index));
  }

  // appendPacked(data: Uint8Array, lengths: Uint32Array, count) -> last index, or
  // -code. The records' payloads back to back in `data` (wal.ts packs them):
  // two N-API calls in all instead of two per record.
  Napi::Value AppendPacked(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    napi_typedarray_type type;
    size_t data_length = 0;
    size_t count = 0;
    void* data = nullptr;
    void* lengths = nullptr;
    napi_get_typedarray_info(env, info[0], &type, &data_length, &data, nullptr, nullptr);
    napi_get_typedarray_info(env, info[1], &type, &count, &lengths, nullptr, nullptr);
    count = std::min<size_t>(count, static_cast<size_t>(info[2].As<Napi::Number>().Int64Value()));
    records_.resize(count);
    const auto* base = static_cast<const uint8_t*>(data);
    const auto* lens = static_cast<const uint32_t*>(lengths);
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
      uint32_t n = lens[i];
      // wal.ts packs exactly these lengths; a mismatch is a bug, never an overread.
      if (n > data_length - off) n = static_cast<uint32_t>(data_length - off);
      records_[i] = {base + off, n};
      off += n;
    }
    Status st;
    uint64_t index = log_->append_many(records_, &st);
    if (index == 0) return Fail(info.Env(), st);
    return Napi::Number::New(env, static_cast<double>(index));
  }

  Napi::Value TruncateAfter(const Napi::CallbackInfo& info) {
    Status st;
    uint64_t id = log_->truncate_after(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()), &st);
    if (id == 0) return Fail(info.Env(), st);
    return Napi::Number::New(info.Env(), static_cast<double>(id));
  }

  Napi::Value TruncateBefore(const Napi::CallbackInfo& info) {
    Status st;
    uint64_t id = log_->truncate_before(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()), &st);
    if (id == 0) return Fail(info.Env(), st);
    return Napi::Number::New(info.Env(), static_cast<double>(id));
  }

  Napi::Value LastError(const Napi::CallbackInfo& info) { return status_to_js(info.Env(), *last_error_); }

  class ReadWorker : public Napi::AsyncWorker {
   public:
    ReadWorker(Napi::Env env, std::shared_ptr<Log> log, uint64_t from, uint64_t to, size_t max_bytes, bool single)
        : Napi::AsyncWorker(env, "tidemark.read"),
          deferred_(Napi::Promise::Deferred::New(env)),
          log_(std::move(log)),
          from_(from),
          to_(to),
          max_bytes_(max_bytes),
          single_(single) {}

    Napi::Promise Promise() { return deferred_.Promise(); }

    void Execute() override { status_ = log_->read_range(from_, to_, single_ ? 0 : max_bytes_, &data_, &lengths_, &next_); }

    void OnOK() override {
      Napi::Env env = Env();
      if (!status_.ok()) {
        deferred_.Reject(status_to_js(env, status_));
        return;
      }
      Napi::Buffer<uint8_t> buf;
      if (data_.empty()) {
        buf = Napi::Buffer<uint8_t>::New(env, 0);
      } else {
        auto* vec = new std::vector<uint8_t>(std::move(data_));
        buf = Napi::Buffer<uint8_t>::New(
            env, vec->data(), vec->size(), [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, vec);
      }
      if (single_) {
        deferred_.Resolve(buf);
        return;
      }
      Napi::Array lengths = Napi::Array::New(env, lengths_.size());
      for (uint32_t i = 0; i < lengths_.size(); i++) lengths.Set(i, lengths_[i]);
      Napi::Array result = Napi::Array::New(env, 3);
      result.Set(0u, buf);
      result.Set(1u, lengths);
      result.Set(2u, static_cast<double>(next_));
      deferred_.Resolve(result);
    }

   private:
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<Log> log_;
    uint64_t from_, to_;
    size_t max_bytes_;
    bool single_;
    Status status_;
    std::vector<uint8_t> data_;
    std::vector<uint32_t> lengths_;
    uint64_t next_ = 0;
  };

  // read(index) -> Promise<Buffer>
  Napi::Value Read(const Napi::CallbackInfo& info) {
    uint64_t index = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    auto* w = new ReadWorker(info.Env(), log_, index, index, 0, true);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // readRange(from, to, maxBytes) -> Promise<[Buffer, number[], next]>
  Napi::Value ReadRange(const Napi::CallbackInfo& info) {
    uint64_t from = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    uint64_t to = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    size_t max_bytes = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
    auto* w = new ReadWorker(info.Env(), log_, from, to, max_bytes, false);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tidemark::LogStats s;
    log_->stats(&s);
    Napi::Object o = Napi::Object::New(env);
    o.Set("appends", static_cast<double>(s.appends));
    o.Set("batches", static_cast<double>(s.batches));
    o.Set("syncs", static_cast<double>(s.syncs));
    o.Set("bytesWritten", static_cast<double>(s.bytes_written));
    o.Set("paddingBytes", static_cast<double>(s.padding_bytes));
    o.Set("segments", static_cast<double>(s.segments));
    Napi::Array bh = Napi::Array::New(env, tidemark::kHistBatchBuckets);
    for (uint32_t i = 0; i < tidemark::kHistBatchBuckets; i++) bh.Set(i, static_cast<double>(s.batch_hist[i]));
    Napi::Array sh = Napi::Array::New(env, tidemark::kHistLatencyBuckets);
    for (uint32_t i = 0; i < tidemark::kHistLatencyBuckets; i++) sh.Set(i, static_cast<double>(s.sync_hist[i]));
    o.Set("batchSize", bh);
    o.Set("syncLatencyUs", sh);
    return o;
  }

  Napi::Value FirstIndex(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(log_->first_index()));
  }
  Napi::Value LastIndex(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(log_->last_index()));
  }
  Napi::Value BlockBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), log_->block_bytes()); }
  // What the open's repairTail dropped: { path, offset, firstIndex, lastIndex (null: unknown), reason }, or undefined.
  Napi::Value TailRepair(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const tidemark::TailRepair& r = log_->tail_repair();
    if (!r.dropped) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", r.path);
    o.Set("offset", static_cast<double>(r.offset));
    o.Set("firstIndex", static_cast<double>(r.first_index));
    o.Set("lastIndex", r.last_index == 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(r.last_index)));
    o.Set("reason", r.reason);
    return o;
  }

  // close() -> true when this call started the close (the report settles it).
  Napi::Value Close(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), log_->close()); }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (!tsfn_released_) tsfn_.Ref(info.Env());
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (!tsfn_released_) tsfn_.Unref(info.Env());
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }
  // io() -> 'uring' | 'thread': the path this log's appends take.
  Napi::Value Io(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), log_ && log_->uses_uring() ? "uring" : "thread");
  }
  // ioFallbackReason() -> why io: 'auto' fell back to the writer thread, or ''.
  Napi::Value IoFallbackReason(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), log_ ? log_->uring_fallback_reason() : std::string());
  }
  // flush(): the fallback of FastFlush.
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    if (log_) log_->uring_flush();
    return info.Env().Undefined();
  }
  // settled(count): JS handled `count` append-settling reports (wal.ts).
  Napi::Value Settled(const Napi::CallbackInfo& info) {
    if (log_ && info.Length() > 0 && info[0].IsNumber()) {
      double n = info[0].As<Napi::Number>().DoubleValue();
      if (n > 0) log_->reports_settled(static_cast<uint64_t>(n));
    }
    return info.Env().Undefined();
  }

  // inspect() -> { damage: NativeError | null, torn: { path, offset, end } | null,
  //               segments: [{ path, firstIndex, lastIndex, fileBytes, endOffset, version }] }
  Napi::Value Inspect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!log_) return env.Null();
    o.Set("damage", log_->damage().ok() ? env.Null() : Napi::Value(status_to_js(env, log_->damage())));
    if (log_->torn_path().empty()) {
      o.Set("torn", env.Null());
    } else {
      Napi::Object t = Napi::Object::New(env);
      t.Set("path", log_->torn_path());
      t.Set("offset", static_cast<double>(log_->torn_offset()));
      t.Set("end", static_cast<double>(log_->torn_end()));
      o.Set("torn", t);
    }
    std::vector<tidemark::SegmentInfo> infos;
    log_->segment_infos(&infos);
    Napi::Array arr = Napi::Array::New(env, infos.size());
    for (uint32_t i = 0; i < infos.size(); i++) {
      Napi::Object g = Napi::Object::New(env);
      g.Set("path", infos[i].path);
      g.Set("firstIndex", static_cast<double>(infos[i].first_index));
      g.Set("lastIndex", static_cast<double>(infos[i].last_index));
      g.Set("fileBytes", static_cast<double>(infos[i].file_bytes));
      g.Set("endOffset", static_cast<double>(infos[i].end_offset));
      g.Set("version", infos[i].version);
      arr.Set(i, g);
    }
    o.Set("segments", arr);
    return o;
  }

  std::shared_ptr<Log> log_;
  Tsfn tsfn_;
  bool tsfn_released_ = false;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference on_report_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  napi_env env_ = nullptr;
  EnvData* env_data_ = nullptr;
  std::shared_ptr<Status> last_error_ = std::make_shared<Status>();  // shared with FastAppendData
  std::vector<std::pair<const uint8_t*, uint32_t>> records_;
};

// One call per writer iteration: onReport(durableTicket, failedTicket, firstIndex, lastIndex, failure?, commands?, closed, ack)
void CallJs(Napi::Env env, Napi::Function callback, LogWrap* context, BatchReport* data) {
  std::unique_ptr<BatchReport> report(data);
  if (env == nullptr || report == nullptr) return;
  // io_uring mode: the writer thread's handoff is over once JS has its report.
  if (context->UsesUring()) context->log()->writer_report_delivered();
  napi_value argv[8];
  LogWrap::ReportArgs(env, *report, argv);
  if (report->closed) context->OnClosed();
  // Raw call: while a worker or the process is exiting, JS cannot run and the
  // call fails; that must not turn into a fatal napi_throw. (wal.ts catches its
  // own errors and rethrows them asynchronously, so nothing is lost here.)
  napi_value result;
  if (napi_call_function(env, env.Undefined(), callback, 8, argv, &result) != napi_ok) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

class OpenWorker : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Env env, std::string dir, tidemark::LogOptions options, Tsfn tsfn, Napi::Object wrap_obj,
             Napi::Function on_report)
      : Napi::AsyncWorker(env, "tidemark.open"),
        deferred_(Napi::Promise::Deferred::New(env)),
        dir_(std::move(dir)),
        options_(options),
        tsfn_(tsfn),
        wrap_(Napi::Persistent(wrap_obj)),
        on_report_(Napi::Persistent(on_report)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    Tsfn tsfn = tsfn_;
    status_ = Log::open(dir_, options_,
                        [tsfn](std::unique_ptr<BatchReport> report) mutable {
                          BatchReport* raw = report.release();
                          if (tsfn.NonBlockingCall(raw) != napi_ok) delete raw;
                        },
                        &log_);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      tsfn_.Release();
      deferred_.Reject(status_to_js(env, status_));
      return;
    }
    Napi::Object obj = wrap_.Value();
    LogWrap* wrap = LogWrap::Unwrap(obj);
    auto* data = env.GetInstanceData<EnvData>();
    wrap->Attach(env, std::move(log_), tsfn_, data, on_report_.Value());
    wrap->InstallFastAppend(env, obj);
    tsfn_.Unref(env);  // JS refs it while appends are pending
    deferred_.Resolve(obj);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_;
  tidemark::LogOptions options_;
  Tsfn tsfn_;
  Napi::ObjectReference wrap_;
  Napi::FunctionReference on_report_;
  Status status_;
  std::shared_ptr<Log> log_;
};

// openLog(dir, syncMode 0..3, segmentBytes, maxRecordBytes, busyPollMicros, onReport[, readOnly, fromSegment, repairTail,
//         io 0 thread | 1 uring | 2 auto, uringProbeFail]) -> Promise<NativeLog>
Napi::Value OpenLog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* data = env.GetInstanceData<EnvData>();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  tidemark::LogOptions options;
  options.sync = static_cast<tidemark::SyncMode>(info[1].As<Napi::Number>().Int32Value());
  options.segment_bytes = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  options.max_record_bytes = static_cast<uint32_t>(info[3].As<Napi::Number>().Int64Value());
  options.busy_poll_us = static_cast<uint32_t>(info[4].As<Napi::Number>().Int64Value());
  Napi::Function on_report = info[5].As<Napi::Function>();
  if (info.Length() > 6 && info[6].IsBoolean()) options.read_only = info[6].As<Napi::Boolean>().Value();
  if (info.Length() > 7 && info[7].IsNumber()) options.from_segment = static_cast<uint64_t>(info[7].As<Napi::Number>().Int64Value());
  options.repair_tail = info.Length() > 8 && info[8].IsBoolean() && info[8].As<Napi::Boolean>().Value();
  if (info.Length() > 9 && info[9].IsNumber()) options.io = static_cast<tidemark::IoMode>(info[9].As<Napi::Number>().Int32Value());
  options.uring_probe_fail = info.Length() > 10 && info[10].IsBoolean() && info[10].As<Napi::Boolean>().Value();
  Napi::Object obj = data->log_ctor.New({});
  LogWrap* wrap = LogWrap::Unwrap(obj);
  Tsfn tsfn = Tsfn::New(env, on_report, "tidemark.wal", 0, 1, wrap);
  auto* w = new OpenWorker(env, std::move(dir), options, tsfn, obj, on_report);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// Env teardown (worker exit, process exit): close every open log, join its
// writer. Owns EnvData (instance data has no finalizer, so the order of the two
// does not matter).
void EnvCleanup(void* arg) {
  auto* data = static_cast<EnvData*>(arg);
  data->tearing_down = true;
  std::set<LogWrap*> logs;
  logs.swap(data->open_logs);
  for (LogWrap* wrap : logs) wrap->Teardown();
  data->log_ctor.Reset();
  delete data;
}

void NoFinalize(Napi::Env, EnvData*) {}

// crc32c(buf: Uint8Array, seed: number) -> number. Arguments are validated in TypeScript.
// This is the hot call for small buffers, so it is written against the C N-API directly:
// one napi_get_typedarray_info gives the (offset-adjusted) data pointer and length
// without creating an ArrayBuffer handle, and nothing else is converted.
napi_value Crc32c(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    napi_throw_type_error(env, nullptr, "crc32c(data, seed): two arguments expected");
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, nullptr, "crc32c(data, seed): data must be a Uint8Array");
    return nullptr;
  }
  uint32_t seed = 0;
  if (napi_get_value_uint32(env, argv[1], &seed) != napi_ok) {
    napi_throw_type_error(env, nullptr, "crc32c(data, seed): seed must be a number");
    return nullptr;
  }
  // An empty view may have no backing store (data == nullptr); crc32c of nothing is the seed.
  const uint32_t crc = length == 0 ? seed : tidemark::crc32c_extend(seed, static_cast<const uint8_t*>(data), length);
  napi_value result;
  if (napi_create_uint32(env, crc, &result) != napi_ok) return nullptr;
  return result;
}

Napi::Value Crc32cImplementation(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tidemark::crc32c_implementation());
}

Napi::Value Crc32cForceTable(const Napi::CallbackInfo& info) {
  tidemark::crc32c_force_table(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

// `tidemark bench fsync` primitives (native/bench_sync.h); the benchmark times them from JS.
// benchAlignOffset(view, align): bytes into view to the first aligned byte.
// benchUringOpen(): handle >= 0, or a string saying why io_uring is unavailable.
// benchUringWriteFdatasync(handle, fd, view, offset): bytes written or -errno.
Napi::Value BenchAlignOffset(const Napi::CallbackInfo& info) {
  auto view = info[0].As<Napi::Uint8Array>();
  const auto align = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  return Napi::Number::New(info.Env(), static_cast<double>(tidemark::bench::align_offset(view.Data(), align)));
}

Napi::Value BenchUringOpen(const Napi::CallbackInfo& info) {
  std::string reason;
  const int handle = tidemark::bench::uring_open(&reason);
  if (handle < 0) return Napi::String::New(info.Env(), reason);
  return Napi::Number::New(info.Env(), handle);
}

Napi::Value BenchUringWriteFdatasync(const Napi::CallbackInfo& info) {
  auto view = info[2].As<Napi::Uint8Array>();
  const int64_t r = tidemark::bench::uring_write_fdatasync(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), view.Data(), view.ByteLength(),
                                                           static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value()));
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

Napi::Value BenchUringClose(const Napi::CallbackInfo& info) {
  tidemark::bench::uring_close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

#ifdef TIDEMARK_FAULTS
// Fault controls (test build only). faults(op, a?, b?) where op is one of:
// 'reset', 'failSync', 'failWrite', 'failAllocate', 'powerLoss', 'crashAtWrite', 'crashAtWriteSectors',
// 'crashAtWriteByte', 'shortWrite', 'failAlloc', 'crashed', 'unsynced'.
Napi::Value Faults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string op = info[0].As<Napi::String>().Utf8Value();
  auto num = [&](size_t i) -> int64_t {
    return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Int64Value() : 0;
  };
  namespace f = tidemark::faults;
  if (op == "reset") {
    f::reset();
  } else if (op == "failSync") {
    f::fail_sync(static_cast<int>(num(1)));
  } else if (op == "failWrite") {
    f::fail_write(static_cast<int>(num(1)), static_cast<uint64_t>(num(2)));
  } else if (op == "failAllocate") {
    f::fail_allocate(static_cast<int>(num(1)));
  } else if (op == "powerLoss") {
    f::power_loss(info.Length() > 1 && info[1].IsNumber() ? num(1) : -1);
  } else if (op == "crashAtWrite") {
    f::crash_at_write(static_cast<uint64_t>(num(1)), static_cast<uint64_t>(num(2)));
  } else if (op == "crashAtWriteSectors") {
    f::crash_at_write_sectors(static_cast<uint64_t>(num(1)), static_cast<uint64_t>(num(2)));
  } else if (op == "crashAtWriteByte") {
    f::crash_at_write_byte(static_cast<uint64_t>(num(1)), static_cast<uint64_t>(num(2)));
  } else if (op == "shortWrite") {
    f::short_write(static_cast<uint64_t>(num(1)), static_cast<uint64_t>(num(2)));
  } else if (op == "failAlloc") {
    f::fail_alloc(static_cast<uint64_t>(num(1)), static_cast<uint64_t>(num(2)));
  } else if (op == "crashed") {
    return Napi::Boolean::New(env, f::crashed());
  } else if (op == "unsynced") {
    return Napi::Number::New(env, static_cast<double>(f::unsynced_writes()));
  } else {
    Napi::Error::New(env, "unknown fault op " + op).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}
#endif

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new EnvData();
  data->log_ctor = Napi::Persistent(LogWrap::Define(env));
  env.SetInstanceData<EnvData, NoFinalize>(data);
  napi_add_env_cleanup_hook(env, EnvCleanup, data);
  napi_value crc32c_fn;
  if (napi_create_function(env, "crc32c", NAPI_AUTO_LENGTH, Crc32c, nullptr, &crc32c_fn) != napi_ok) {
    Napi::Error::New(env, "tidemark: could not create crc32c").ThrowAsJavaScriptException();
    return exports;
  }
  exports.Set("crc32c", Napi::Value(env, crc32c_fn));
  exports.Set("crc32cImplementation", Napi::Function::New(env, Crc32cImplementation, "crc32cImplementation"));
  exports.Set("crc32cForceTable", Napi::Function::New(env, Crc32cForceTable, "crc32cForceTable"));
  exports.Set("openLog", Napi::Function::New(env, OpenLog, "openLog"));
  exports.Set("benchAlignOffset", Napi::Function::New(env, BenchAlignOffset, "benchAlignOffset"));
  exports.Set("benchUringOpen", Napi::Function::New(env, BenchUringOpen, "benchUringOpen"));
  exports.Set("benchUringWriteFdatasync", Napi::Function::New(env, BenchUringWriteFdatasync, "benchUringWriteFdatasync"));
  exports.Set("benchUringClose", Napi::Function::New(env, BenchUringClose, "benchUringClose"));
  exports.Set("limits", [&] {
    Napi::Object o = Napi::Object::New(env);
    o.Set("segmentBytesMin", static_cast<double>(tidemark::kSegmentBytesMin));
    o.Set("segmentBytesMax", static_cast<double>(tidemark::kSegmentBytesMax));
    o.Set("recordBytesMax", static_cast<double>(tidemark::kRecordBytesMax));
    return o;
  }());
#ifdef TIDEMARK_FAULTS
  exports.Set("faults", Napi::Function::New(env, Faults, "faults"));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(tidemark, Init)
