#include "filesystem_relay.hpp"

#include <atomic>
#include <future>
#include <memory>

namespace coldscan::scanner {

void FilesystemRelay::start(Read read) {
    while (m_reads.size() >= 2) {
        m_reads.front().join();
        m_reads.pop_front();
    }
    auto listed = std::make_shared<std::promise<void>>();
    auto listed_future = listed->get_future();
    m_reads.emplace_back([read = std::move(read), listed] {
        auto said = std::make_shared<std::atomic<bool>>(false);
        const std::function<void()> say = [&listed, said] {
            if (!said->exchange(true)) {
                listed->set_value();
            }
        };
        read(say);
        say();
    });
    listed_future.wait();
}

void FilesystemRelay::finish() {
    for (auto& read : m_reads) {
        read.join();
    }
    m_reads.clear();
}

} // namespace coldscan::scanner
