// The service's TOML config (`coldscan serve --config FILE`): toml++ for the syntax, then every key checked.
// Oracles on what parse_service_config accepts: the rules the header promises (absolute state_dir, a token
// of 16+ characters, no open API without one, datastores on known hosts with absolute roots, a listen
// address that reads back the same); on what it refuses: invalid_argument, every line "fuzz.toml:LINE...".
// Short inputs are also read as a listen address ("127.0.0.1:8731", "[::1]:80", "unix:/path").
#include "coldscan/scheduler/service_config.hpp"
#include "fuzz_support.hpp"

using coldscan::Errc;
namespace scheduler = coldscan::scheduler;

namespace {

void check_listen_round_trip(const scheduler::ListenAddress& address) {
    const auto again = scheduler::parse_listen_address(address.to_string());
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->address == address.address && again->port == address.port &&
               again->unix_socket == address.unix_socket);
    FUZZ_CHECK(address.unix_socket.empty() ? address.port != 0 : address.unix_socket.is_absolute());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (size < 128) {
        if (const auto address = scheduler::parse_listen_address(text)) {
            check_listen_round_trip(*address);
        }
    }

    auto config = scheduler::parse_service_config(text, "fuzz.toml");
    if (!config) {
        FUZZ_CHECK(config.error().code == Errc::invalid_argument);
        const std::string& message = config.error().message;
        FUZZ_CHECK(!message.empty());
        for (std::size_t line = 0; line < message.size();) {
            FUZZ_CHECK(message.compare(line, 10, "fuzz.toml:") == 0);
            const auto end = message.find('\n', line);
            line = end == std::string::npos ? message.size() : end + 1;
        }
        return 0;
    }
    FUZZ_CHECK(config->state_dir.is_absolute());
    FUZZ_CHECK(config->max_attempts >= 1);
    const auto& api = config->api;
    FUZZ_CHECK(api.listen.loopback() || api.auth_token.has_value());
    FUZZ_CHECK(!api.auth_token || api.auth_token->size() >= 16);
    FUZZ_CHECK(api.max_request_bytes > 0);
    check_listen_round_trip(api.listen);
    const auto& inventory = config->inventory;
    for (const auto& host : inventory.hosts()) {
        FUZZ_CHECK(!host.name.empty());
        FUZZ_CHECK(inventory.host_index(host.name).has_value());
    }
    for (const auto& datastore : inventory.datastores()) {
        FUZZ_CHECK(inventory.datastore_index(datastore.name).has_value());
        for (const auto& host : datastore.hosts) {
            FUZZ_CHECK(inventory.host_index(host).has_value());
        }
        for (const auto& root : datastore.roots) {
            FUZZ_CHECK(root.starts_with('/'));
        }
    }
    for (const auto& [host, probe] : config->load_probes) {
        FUZZ_CHECK(inventory.host_index(host).has_value());
    }
    for (const auto& [datastore, patterns] : config->image_patterns) {
        FUZZ_CHECK(inventory.datastore_index(datastore).has_value());
        FUZZ_CHECK(!patterns.empty());
    }
    return 0;
}
