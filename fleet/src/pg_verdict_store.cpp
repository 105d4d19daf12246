#include "coldscan/fleet/pg_verdict_store.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

namespace coldscan::fleet {
namespace {

using scanner::KeySpace;

constexpr std::size_t k_batch = 500;

bool is_shared(KeySpace space) {
    return space == KeySpace::content_verdict || space == KeySpace::signature_sets;
}

std::string table_of(KeySpace space) {
    return space == KeySpace::content_verdict ? "coldscan_verdicts" : "coldscan_set_lineage";
}

// bytea as PostgreSQL's text input reads it.
std::string bytea_text(std::string_view bytes) {
    return "\\x" + hex_encode(bytes);
}

std::optional<std::string> bytes_of_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const auto digit = [](char c) -> int {
            return c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        };
        const int high = digit(hex[i]);
        const int low = digit(hex[i + 1]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        out += static_cast<char>(high * 16 + low);
    }
    return out;
}

} // namespace

PgVerdictStore::PgVerdictStore(std::shared_ptr<scanner::KvStore> local, PgConnection connection,
                               std::string node)
    : m_local(std::move(local)), m_node(std::move(node)), m_db(std::move(connection)) {}

PgVerdictStore::~PgVerdictStore() {
    flush();
}

void PgVerdictStore::warn_once(const Error& error) const {
    if (!m_warned) {
        spdlog::warn("fleet: shared verdicts unavailable, this node scans what it does not know itself: {}",
                     error.message);
    }
    m_warned = true;
}

Expected<std::optional<std::string>> PgVerdictStore::get(KeySpace space, std::string_view key) const {
    auto local = m_local->get(space, key);
    if (!is_shared(space) || !local || *local) {
        return local;
    }
    auto shared = lookup_shared(space, key);
    if (!shared) {
        return local; // a miss: the content is scanned
    }
    m_shared_hits.fetch_add(1);
    // Kept here too: the next lookup of it is local. A failure to keep it costs a lookup, nothing else.
    (void)m_local->put(space, key, *shared);
    return shared;
}

std::optional<std::string> PgVerdictStore::lookup_shared(KeySpace space, std::string_view key) const {
    auto mine = std::make_shared<Lookup>(Lookup{space, std::string(key), std::nullopt, false});
    std::unique_lock lock(m_lookup_mutex);
    m_waiting.push_back(mine);
    while (!mine->done) {
        if (m_asking) {
            m_lookup_done.wait(lock);
            continue;
        }
        // Nobody is asking: this thread asks for everything that waits, its own key included.
        m_asking = true;
        auto batch = std::exchange(m_waiting, {});
        lock.unlock();
        ask(batch);
        lock.lock();
        for (const auto& lookup : batch) {
            lookup->done = true;
        }
        ++m_batches;
        m_keys += batch.size();
        m_asking = false;
        m_lookup_done.notify_all();
    }
    return mine->value;
}

void PgVerdictStore::ask(const std::vector<std::shared_ptr<Lookup>>& batch) const {
    for (const KeySpace space : {KeySpace::content_verdict, KeySpace::signature_sets}) {
        std::vector<std::shared_ptr<Lookup>> part;
        std::ranges::copy_if(batch, std::back_inserter(part),
                             [&](const auto& lookup) { return lookup->space == space; });
        if (!part.empty()) {
            ask_table(space, part);
        }
    }
}

void PgVerdictStore::ask_table(KeySpace space, const std::vector<std::shared_ptr<Lookup>>& batch) const {
    nlohmann::json keys = nlohmann::json::array();
    for (const auto& lookup : batch) {
        keys.push_back(hex_encode(lookup->key));
    }
    std::lock_guard lock(m_db_mutex);
    auto rows = m_db.exec_reconnecting(
        "SELECT encode(key, 'hex') AS key, encode(value, 'hex') AS value FROM " + table_of(space) +
            " WHERE key IN (SELECT decode(k, 'hex') FROM "
            "jsonb_array_elements_text($1::jsonb) AS k)",
        {keys.dump()});
    if (!rows) {
        warn_once(rows.error());
        return; // misses: the contents are scanned
    }
    m_warned = false;
    std::map<std::string, std::string, std::less<>> found;
    for (std::size_t row = 0; row < rows->size(); ++row) {
        if (auto key = bytes_of_hex(rows->text(row, "key"))) {
            found[*key] = rows->text(row, "value");
        }
    }
    for (const auto& lookup : batch) {
        if (const auto hit = found.find(lookup->key); hit != found.end()) {
            lookup->value = bytes_of_hex(hit->second);
        }
    }
}

std::uint64_t PgVerdictStore::lookup_batches() const {
    std::lock_guard lock(m_lookup_mutex);
    return m_batches;
}

std::uint64_t PgVerdictStore::looked_up_keys() const {
    std::lock_guard lock(m_lookup_mutex);
    return m_keys;
}

std::size_t PgVerdictStore::waiting_lookups() const {
    std::lock_guard lock(m_lookup_mutex);
    return m_waiting.size();
}

Expected<void> PgVerdictStore::put(KeySpace space, std::string_view key, std::string_view value) {
    if (auto stored = m_local->put(space, key, value); !stored) {
        return stored;
    }
    if (!is_shared(space)) {
        return {};
    }
    bool full = false;
    {
        std::lock_guard lock(m_buffer_mutex);
        m_buffer.push_back(Pending{space, std::string(key), std::string(value)});
        full = m_buffer.size() >= k_batch;
    }
    if (full) {
        flush();
    }
    return {};
}

void PgVerdictStore::flush() {
    std::vector<Pending> batch;
    {
        std::lock_guard lock(m_buffer_mutex);
        batch.swap(m_buffer);
    }
    for (const KeySpace space : {KeySpace::content_verdict, KeySpace::signature_sets}) {
        nlohmann::json rows = nlohmann::json::array();
        for (const Pending& pending : batch) {
            if (pending.space == space) {
                rows.push_back({hex_encode(pending.key), hex_encode(pending.value)});
            }
        }
        if (rows.empty()) {
            continue;
        }
        std::lock_guard lock(m_db_mutex);
        // The newest record wins: both are valid verdicts (or the same set's records), the later one carries
        // the later use.
        auto written = m_db.exec_reconnecting(
            "INSERT INTO " + table_of(space) +
                " (key, value, node) SELECT decode(r->>0, 'hex'), decode(r->>1, 'hex'), $2 FROM "
                "jsonb_array_elements($1::jsonb) AS r ON CONFLICT (key) DO UPDATE SET value = "
                "EXCLUDED.value, "
                "node = EXCLUDED.node, at = now()",
            {rows.dump(), m_node});
        if (!written) {
            spdlog::warn("fleet: {} record(s) of {} not shared: {}", rows.size(), to_string(space),
                         written.error().message);
        }
    }
}

Expected<void> PgVerdictStore::erase(KeySpace space, std::string_view key) {
    return m_local->erase(space, key);
}

Expected<void>
PgVerdictStore::for_each(KeySpace space,
                         const std::function<bool(std::string_view, std::string_view)>& visit) const {
    return m_local->for_each(space, visit);
}

Expected<void> PgVerdictStore::sync() {
    auto synced = m_local->sync();
    flush();
    return synced;
}

Expected<void> PgVerdictStore::verify_checksums() const {
    return m_local->verify_checksums();
}

Expected<void> PgVerdictStore::compact() {
    return m_local->compact();
}

std::string PgVerdictStore::open_problem() const {
    return m_local->open_problem();
}

} // namespace coldscan::fleet
