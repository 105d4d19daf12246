#include "coldscan/disk/nbd_device.hpp"

#include "extent_map.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <libnbd.h>
#include <mutex>
#include <spdlog/spdlog.h>

namespace coldscan::disk {

namespace {

constexpr const char* k_depth_context = "qemu:allocation-depth";
constexpr std::uint64_t k_max_read = 32ULL << 20;          // qemu-nbd's largest request
constexpr std::uint64_t k_max_status_request = 1ULL << 30; // block status lengths are 32-bit on the wire
// A server that accepts but never answers (a full qemu-nbd --shared, a hung backup appliance) must not hang
// the scan: connecting gives up after this.
constexpr auto k_connect_timeout = std::chrono::seconds(30);

std::string nbd_message(std::string_view what) {
    const char* error = ::nbd_get_error();
    return std::string(what) + ": " + (error != nullptr ? error : "unknown libnbd error");
}

struct HandleCloser {
    void operator()(nbd_handle* h) const noexcept { ::nbd_close(h); }
};
using Handle = std::unique_ptr<nbd_handle, HandleCloser>;

struct StatusCollector {
    const char* context;
    std::vector<BlockExtent>* out;
    std::uint64_t covered = 0; // bytes the server answered for
};

// A libnbd callback: nothing may be thrown through it (a failed allocation fails the block-status call).
int collect_extents(void* user_data, const char* metacontext, std::uint64_t offset, std::uint32_t* entries,
                    std::size_t nr_entries, int* error) noexcept {
    auto* collector = static_cast<StatusCollector*>(user_data);
    if (std::string_view(metacontext) != collector->context) {
        return 0;
    }
    try {
        collector->covered +=
            detail::append_block_status(*collector->out, offset, std::span(entries, nr_entries));
    } catch (...) {
        *error = ENOMEM;
        return -1;
    }
    return 0;
}

} // namespace

struct NbdDevice::Impl {
    std::vector<Handle> handles;
    std::vector<nbd_handle*> idle;
    std::mutex mutex;
    std::condition_variable returned;
    std::uint64_t size = 0;
    std::uint64_t min_block = 1; // the export's minimum request alignment (VHDX: 4096)
    bool depth = false;
    std::string bitmap_context; // empty when none was asked for
    std::shared_ptr<ReadThrottle> throttle;

    // A connection for one request; back to the pool when the lease ends.
    class Lease {
    public:
        explicit Lease(Impl& impl) : m_impl(impl) {
            std::unique_lock lock(m_impl.mutex);
            m_impl.returned.wait(lock, [&] { return !m_impl.idle.empty(); });
            m_handle = m_impl.idle.back();
            m_impl.idle.pop_back();
        }
        ~Lease() {
            {
                const std::lock_guard lock(m_impl.mutex);
                m_impl.idle.push_back(m_handle);
            }
            m_impl.returned.notify_one();
        }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        [[nodiscard]] nbd_handle* get() const noexcept { return m_handle; }

    private:
        Impl& m_impl;
        nbd_handle* m_handle = nullptr;
    };

    Expected<std::vector<BlockExtent>> status(const char* context, std::uint64_t offset,
                                              std::uint64_t length) {
        if (offset > size || length > size - offset) {
            return make_error(Errc::invalid_argument, "block status asked past the end of the disk");
        }
        std::vector<BlockExtent> extents;
        const Lease lease(*this);
        std::uint64_t position = offset;
        const std::uint64_t end = offset + length;
        while (position < end) {
            StatusCollector collector{context, &extents, 0};
            const std::uint64_t count = std::min(end - position, k_max_status_request);
            if (::nbd_block_status(lease.get(), count, position,
                                   nbd_extent_callback{collect_extents, &collector, nullptr}, 0) == -1) {
                return make_error(Errc::io, nbd_message("block status failed"));
            }
            if (collector.covered == 0) {
                return make_error(Errc::io, std::string("the export answered nothing for ") + context);
            }
            position += collector.covered;
        }
        // The server may describe a little past the range asked for: clip the last extent.
        detail::clip_extents(extents, end);
        return extents;
    }
};

NbdDevice::NbdDevice(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
NbdDevice::~NbdDevice() = default;

namespace {

// Drives an asynchronous connect (started = the nbd_aio_connect_* result) to the end or the deadline.
bool connected(nbd_handle* h, int started) {
    if (started == -1) {
        return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + k_connect_timeout;
    while (::nbd_aio_is_connecting(h) == 1) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::nbd_aio_disconnect(h, 0);
            return false;
        }
        if (::nbd_poll(h, static_cast<int>(left.count())) == -1) {
            return false;
        }
    }
    return ::nbd_aio_is_ready(h) == 1;
}

template <typename ConnectFn>
Expected<std::unique_ptr<NbdDevice::Impl>> connect_all(const NbdOptions& options, ConnectFn&& connect,
                                                       const std::string& where) {
    auto impl = std::make_unique<NbdDevice::Impl>();
    impl->throttle = options.throttle;
    if (!options.dirty_bitmap.empty()) {
        impl->bitmap_context = "qemu:dirty-bitmap:" + options.dirty_bitmap;
    }
    const unsigned wanted = std::max(1U, options.connections);
    for (unsigned i = 0; i < wanted; ++i) {
        Handle h(::nbd_create());
        if (!h) {
            return make_error(Errc::io, nbd_message("cannot create an NBD handle"));
        }
        ::nbd_add_meta_context(h.get(), k_depth_context);
        if (!impl->bitmap_context.empty()) {
            ::nbd_add_meta_context(h.get(), impl->bitmap_context.c_str());
        }
        if (!connected(h.get(), connect(h.get()))) {
            if (i == 0) {
                return make_error(Errc::io, nbd_message("cannot connect to " + where));
            }
            spdlog::debug("{}: only {} of {} connections accepted", where, i, wanted);
            break;
        }
        if (i == 0) {
            const std::int64_t size = ::nbd_get_size(h.get());
            if (size < 0) {
                return make_error(Errc::io, nbd_message("cannot get the size of " + where));
            }
            impl->size = static_cast<std::uint64_t>(size);
            const std::int64_t min_block = ::nbd_get_block_size(h.get(), LIBNBD_SIZE_MINIMUM);
            impl->min_block = min_block > 1 ? static_cast<std::uint64_t>(min_block) : 1;
            impl->depth = ::nbd_can_meta_context(h.get(), k_depth_context) == 1;
            if (!impl->bitmap_context.empty() &&
                ::nbd_can_meta_context(h.get(), impl->bitmap_context.c_str()) != 1) {
                return make_error(Errc::unsupported,
                                  "the export offers no dirty bitmap named \"" + options.dirty_bitmap + "\"");
            }
        }
        impl->idle.push_back(h.get());
        impl->handles.push_back(std::move(h));
    }
    return impl;
}

} // namespace

Expected<std::unique_ptr<NbdDevice>> NbdDevice::connect_unix(const std::string& socket,
                                                             const NbdOptions& options) {
    auto impl = connect_all(
        options, [&](nbd_handle* h) { return ::nbd_aio_connect_unix(h, socket.c_str()); }, socket);
    if (!impl) {
        return std::unexpected(impl.error());
    }
    return std::unique_ptr<NbdDevice>(new NbdDevice(std::move(*impl)));
}

Expected<std::unique_ptr<NbdDevice>> NbdDevice::connect_uri(const std::string& uri,
                                                            const NbdOptions& options) {
    const bool known = uri.starts_with("nbd://") || uri.starts_with("nbd+unix://") ||
                       uri.starts_with("nbds://") || uri.starts_with("nbds+unix://");
    if (!known) {
        return make_error(
            Errc::invalid_argument,
            "not an NBD URI (expected nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH): " + uri);
    }
    auto impl = connect_all(
        options, [&](nbd_handle* h) { return ::nbd_aio_connect_uri(h, uri.c_str()); }, uri);
    if (!impl) {
        return std::unexpected(impl.error());
    }
    return std::unique_ptr<NbdDevice>(new NbdDevice(std::move(*impl)));
}

std::uint64_t NbdDevice::size() const noexcept {
    return m_impl->size;
}

bool NbdDevice::has_allocation_depth() const noexcept {
    return m_impl->depth;
}

Expected<void> NbdDevice::read(std::uint64_t offset, std::span<std::byte> out) {
    if (offset > m_impl->size || out.size() > m_impl->size - offset) {
        return make_error(Errc::invalid_argument, "read past the end of the disk");
    }
    const std::uint64_t align = m_impl->min_block;
    // (A disk whose size is not a whole number of blocks ends in a short one: read as it is.)
    if (offset % align != 0 || (out.size() % align != 0 && offset + out.size() < m_impl->size)) {
        // The export wants whole blocks: read the covering aligned range and keep the middle.
        const std::uint64_t start = offset / align * align;
        const std::uint64_t end = std::min(m_impl->size, (offset + out.size() + align - 1) / align * align);
        std::vector<std::byte> bounce(static_cast<std::size_t>(end - start));
        if (auto ok = read(start, bounce); !ok) {
            return ok;
        }
        std::copy_n(bounce.begin() + static_cast<std::ptrdiff_t>(offset - start), out.size(), out.begin());
        return {};
    }
    const Impl::Lease lease(*m_impl);
    while (!out.empty()) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), k_max_read));
        if (m_impl->throttle) {
            m_impl->throttle->acquire(n);
        }
        if (::nbd_pread(lease.get(), out.data(), n, offset, 0) == -1) {
            return make_error(Errc::io, nbd_message("read at byte " + std::to_string(offset) + " failed"));
        }
        out = out.subspan(n);
        offset += n;
    }
    return {};
}

Expected<std::vector<BlockExtent>> NbdDevice::allocation_depth(std::uint64_t offset, std::uint64_t length) {
    if (!m_impl->depth) {
        return make_error(Errc::unsupported, "the export does not report allocation depth");
    }
    return m_impl->status(k_depth_context, offset, length);
}

Expected<std::vector<BlockExtent>> NbdDevice::dirty_blocks(std::uint64_t offset, std::uint64_t length) {
    if (m_impl->bitmap_context.empty()) {
        return make_error(Errc::unsupported, "no dirty bitmap was asked for");
    }
    return m_impl->status(m_impl->bitmap_context.c_str(), offset, length);
}

} // namespace coldscan::disk
