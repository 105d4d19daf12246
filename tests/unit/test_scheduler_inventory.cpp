#include "coldscan/scheduler/inventory.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::scheduler;

namespace {

std::vector<HostSpec> two_hosts() {
    return {HostSpec{"esx1", 2, 0, 0.7}, HostSpec{"esx2", 3, 200'000'000, 0.8}};
}

DatastoreSpec shared_datastore() {
    return DatastoreSpec{"ds1", {"/vmfs/ds1/"}, {"esx1", "esx2"}, 4, 0};
}

// The message of a refused inventory; fails the test when it was accepted.
std::string refusal(std::vector<HostSpec> hosts, std::vector<DatastoreSpec> datastores) {
    auto inventory = Inventory::create(std::move(hosts), std::move(datastores));
    REQUIRE_FALSE(inventory.has_value());
    CHECK(inventory.error().code == Errc::invalid_argument);
    return inventory.error().message;
}

} // namespace

TEST_CASE("Inventory::create", "[scheduler]") {
    SECTION("a valid inventory keeps its hosts and datastores in order") {
        auto inventory = Inventory::create(two_hosts(), {shared_datastore()});
        REQUIRE(inventory.has_value());
        REQUIRE(inventory->hosts().size() == 2);
        CHECK(inventory->hosts()[1].name == "esx2");
        CHECK(inventory->hosts()[1].max_read_bytes_per_second == 200'000'000);
        REQUIRE(inventory->datastores().size() == 1);
        CHECK(inventory->datastores()[0].roots == std::vector<std::string>{"/vmfs/ds1"});
        CHECK(inventory->host_index("esx2") == 1);
        CHECK(inventory->datastore_index("ds1") == 0);
        CHECK_FALSE(inventory->host_index("esx3").has_value());
        CHECK_FALSE(inventory->datastore_index("ds2").has_value());
    }
    SECTION("duplicate names") {
        auto hosts = two_hosts();
        hosts[1].name = "esx1";
        CHECK(refusal(hosts, {}) == "host esx1 is listed twice");
        CHECK(refusal(two_hosts(), {shared_datastore(), DatastoreSpec{"ds1", {}, {"esx1"}, 1, 0}}) ==
              "datastore ds1 is listed twice");
    }
    SECTION("empty names") {
        auto hosts = two_hosts();
        hosts[1].name.clear();
        CHECK(refusal(hosts, {}) == "host #2 has no name");
        auto datastore = shared_datastore();
        datastore.name.clear();
        CHECK(refusal(two_hosts(), {datastore}) == "datastore #1 has no name");
    }
    SECTION("zero caps") {
        auto hosts = two_hosts();
        hosts[0].max_concurrent_scans = 0;
        CHECK(refusal(hosts, {}) == "host esx1: max_concurrent_scans must be at least 1");
        auto datastore = shared_datastore();
        datastore.max_concurrent_scans = 0;
        CHECK(refusal(two_hosts(), {datastore}) == "datastore ds1: max_concurrent_scans must be at least 1");
    }
    SECTION("a pressure threshold outside 0..1") {
        auto hosts = two_hosts();
        hosts[0].pressure_threshold = 1.5;
        CHECK(refusal(hosts, {}) == "host esx1: pressure_threshold 1.5 is outside 0..1");
        hosts[0].pressure_threshold = -0.25;
        CHECK(refusal(hosts, {}) == "host esx1: pressure_threshold -0.25 is outside 0..1");
    }
    SECTION("datastore hosts must be known, and there must be some") {
        auto datastore = shared_datastore();
        datastore.hosts.push_back("esx9");
        CHECK(refusal(two_hosts(), {datastore}) == "datastore ds1: unknown host esx9");
        datastore.hosts.clear();
        CHECK(refusal(two_hosts(), {datastore}) == "datastore ds1: no host mounts it");
    }
    SECTION("roots are absolute and belong to one datastore") {
        auto datastore = shared_datastore();
        datastore.roots = {"vmfs/ds1"};
        CHECK(refusal(two_hosts(), {datastore}) == "datastore ds1: root 'vmfs/ds1' is not an absolute path");
        CHECK(
            refusal(two_hosts(), {shared_datastore(), DatastoreSpec{"ds2", {"/vmfs/ds1"}, {"esx2"}, 1, 0}}) ==
            "root /vmfs/ds1 belongs to datastores ds1 and ds2");
    }
}

TEST_CASE("Inventory::mounts", "[scheduler]") {
    auto inventory =
        Inventory::create(two_hosts(), {shared_datastore(), DatastoreSpec{"local", {}, {"esx2"}, 1, 0}});
    REQUIRE(inventory.has_value());
    CHECK(inventory->mounts(0, 0));
    CHECK(inventory->mounts(1, 0));
    CHECK_FALSE(inventory->mounts(0, 1));
    CHECK(inventory->mounts(1, 1));
    CHECK_FALSE(inventory->mounts(2, 0));
    CHECK_FALSE(inventory->mounts(0, 2));
}

TEST_CASE("Inventory::datastore_of", "[scheduler]") {
    auto inventory =
        Inventory::create(two_hosts(), {DatastoreSpec{"ds1", {"/vmfs/ds1", "/backup/ds1"}, {"esx1"}, 1, 0},
                                        DatastoreSpec{"ds1-archive", {"/vmfs/ds1/archive"}, {"esx1"}, 1, 0},
                                        DatastoreSpec{"everything", {"/"}, {"esx2"}, 1, 0}});
    REQUIRE(inventory.has_value());
    SECTION("a path under a root") {
        CHECK(inventory->datastore_of("/vmfs/ds1/vm1/disk.qcow2") == 0);
        CHECK(inventory->datastore_of("/backup/ds1/vm1.vmdk") == 0);
    }
    SECTION("the longest root wins") {
        CHECK(inventory->datastore_of("/vmfs/ds1/archive/old.qcow2") == 1);
    }
    SECTION("roots match whole path components only") {
        CHECK(inventory->datastore_of("/vmfs/ds10/vm.qcow2") == 2);
        CHECK(inventory->datastore_of("/vmfs/ds1") == 0);
    }
    SECTION("no root holds it") {
        auto narrow = Inventory::create(two_hosts(), {shared_datastore()});
        REQUIRE(narrow.has_value());
        CHECK_FALSE(narrow->datastore_of("/srv/other.qcow2").has_value());
        CHECK_FALSE(narrow->datastore_of("relative/vmfs/ds1/x").has_value());
    }
}
