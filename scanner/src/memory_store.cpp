#include "coldscan/scanner/kv_store.hpp"

#include <map>
#include <mutex>
#include <shared_mutex>

namespace coldscan::scanner {
namespace {

class MemoryStore final : public KvStore {
public:
    Expected<std::optional<std::string>> get(KeySpace space, std::string_view key) const override {
        std::shared_lock lock(m_mutex);
        const auto& map = m_spaces[index(space)];
        if (const auto found = map.find(key); found != map.end()) {
            return found->second;
        }
        return std::optional<std::string>{};
    }

    Expected<void> put(KeySpace space, std::string_view key, std::string_view value) override {
        std::unique_lock lock(m_mutex);
        m_spaces[index(space)].insert_or_assign(std::string(key), std::string(value));
        return {};
    }

    Expected<void> erase(KeySpace space, std::string_view key) override {
        std::unique_lock lock(m_mutex);
        auto& map = m_spaces[index(space)];
        if (const auto found = map.find(key); found != map.end()) {
            map.erase(found);
        }
        return {};
    }

    Expected<void>
    for_each(KeySpace space,
             const std::function<bool(std::string_view, std::string_view)>& visit) const override {
        std::shared_lock lock(m_mutex);
        for (const auto& [key, value] : m_spaces[index(space)]) {
            if (!visit(key, value)) {
                break;
            }
        }
        return {};
    }

    Expected<void> sync() override { return {}; }
    Expected<void> verify_checksums() const override { return {}; }
    Expected<void> compact() override { return {}; }

private:
    static std::size_t index(KeySpace space) { return static_cast<std::size_t>(space); }

    mutable std::shared_mutex m_mutex;
    // std::less<> compares std::string bytewise (char_traits), as RocksDB's default comparator does.
    std::array<std::map<std::string, std::string, std::less<>>, k_key_spaces.size()> m_spaces;
};

} // namespace

std::string_view to_string(KeySpace space) {
    switch (space) {
    case KeySpace::file_identity:
        return "file_identity";
    case KeySpace::content_verdict:
        return "content_verdict";
    case KeySpace::meta:
        return "meta";
    case KeySpace::jobs:
        return "jobs";
    case KeySpace::signature_sets:
        return "signature_sets";
    case KeySpace::content_places:
        return "content_places";
    }
    return "meta";
}

std::unique_ptr<KvStore> open_memory_store() {
    return std::make_unique<MemoryStore>();
}

} // namespace coldscan::scanner
