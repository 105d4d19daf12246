#include "coldscan/scanner/kv_store.hpp"

namespace coldscan::scanner {
namespace {

class SharedStore final : public KvStore {
public:
    explicit SharedStore(std::shared_ptr<KvStore> store) : m_store(std::move(store)) {}

    Expected<std::optional<std::string>> get(KeySpace space, std::string_view key) const override {
        return m_store->get(space, key);
    }
    Expected<void> put(KeySpace space, std::string_view key, std::string_view value) override {
        return m_store->put(space, key, value);
    }
    Expected<void> erase(KeySpace space, std::string_view key) override { return m_store->erase(space, key); }
    Expected<void>
    for_each(KeySpace space,
             const std::function<bool(std::string_view key, std::string_view value)>& visit) const override {
        return m_store->for_each(space, visit);
    }
    Expected<void> sync() override { return m_store->sync(); }
    Expected<void> verify_checksums() const override { return m_store->verify_checksums(); }
    Expected<void> compact() override { return m_store->compact(); }
    std::string open_problem() const override { return m_store->open_problem(); }

private:
    std::shared_ptr<KvStore> m_store;
};

} // namespace

std::unique_ptr<KvStore> share_store(std::shared_ptr<KvStore> store) {
    return std::make_unique<SharedStore>(std::move(store));
}

} // namespace coldscan::scanner
