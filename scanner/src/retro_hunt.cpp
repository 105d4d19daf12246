#include "coldscan/scanner/retro_hunt.hpp"

#include "coldscan/scanner/verdict_cache.hpp"
#include "coldscan/signatures/signature_catalogue.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

namespace coldscan::scanner {
namespace {

// What one stored verdict's layers say against one change.
enum class Answer { no_hash_added, missed, hit, unproven };

// Whether the allow lists may concern a hit of this name in a content of these layers.
bool may_be_allowed(std::string_view name, const ScannedLayers& layers, const AllowListFields& allowed) {
    constexpr std::string_view k_unofficial = ".UNOFFICIAL";
    const std::string_view base =
        name.ends_with(k_unofficial) ? name.substr(0, name.size() - k_unofficial.size()) : name;
    if (allowed.fields.contains(name) || allowed.fields.contains(base)) {
        return true;
    }
    return std::ranges::any_of(layers.digests, [&](const LayerDigest& layer) {
        return allowed.digests.contains(to_hex(layer.md5)) || allowed.digests.contains(to_hex(layer.sha1)) ||
               allowed.digests.contains(to_hex(layer.sha256));
    });
}

Answer compare(const Outcome& outcome, const SetChange& change, const AllowListFields& allowed,
               std::set<std::string>& names) {
    const bool hashes_added = change.hash_texts_unknown || !change.added_hashes.empty();
    if (!hashes_added) {
        return Answer::no_hash_added;
    }
    const ScannedLayers& layers = outcome.layers;
    auto known = [&](const std::string& name) { // detected by this name already: not news
        return std::ranges::any_of(outcome.detections,
                                   [&](const Detection& d) { return d.signature == name; });
    };
    for (const AddedHash& hash : change.added_hashes) {
        if (known(hash.name)) {
            continue;
        }
        if (std::ranges::any_of(layers.digests,
                                [&](const LayerDigest& layer) { return hash_matches(hash, layer); })) {
            if (may_be_allowed(hash.name, layers, allowed)) {
                return Answer::unproven;
            }
            names.insert(hash.name);
        }
    }
    if (!names.empty()) {
        return Answer::hit;
    }
    // A miss proves nothing where digests are not all known or libclamav hashes buffers it never shows.
    const bool provable = layers.complete && layers.digests_complete && !change.hash_texts_unknown &&
                          !signatures::derives_unseen_buffers(layers.types);
    return provable ? Answer::missed : Answer::unproven;
}

// The hunt over the stored verdicts, one content at a time (a content may have several records: contexts,
// variants); a hit in any of them is a hit.
class Hunter {
public:
    Hunter(SetLineage& lineage, std::string_view detection_set, const AllowListFields& allowed)
        : m_lineage(lineage), m_set(detection_set), m_allowed(allowed) {}

    // The lineage is asked between the walks, never inside one (a store may hold a lock while it walks).
    Expected<void> learn_changes(const std::set<std::string>& made_with, RetroHunt& out) {
        for (const auto& set : made_with) {
            auto change = m_lineage.change(set, m_set);
            if (!change) {
                return std::unexpected(change.error());
            }
            if (*change) {
                out.from_sets.push_back(set);
                out.hash_lines_added += (*change)->added_hashes.size();
            }
            m_changes.emplace(set, *change);
        }
        return {};
    }

    void visit(const StoredVerdict& verdict, RetroHunt& out) {
        ++out.verdicts;
        Seen& seen = m_contents[verdict.content];
        if (verdict.made_with == m_set) {
            seen.current = true;
            return;
        }
        const auto change = m_changes.find(verdict.made_with);
        if (change == m_changes.end() || change->second == nullptr) {
            seen.unproven = true; // a set the lineage does not keep: the next scan rescans it
            return;
        }
        seen.compared = true;
        if (compare(verdict.outcome, *change->second, m_allowed, seen.names) == Answer::unproven) {
            seen.unproven = true;
        }
    }

    void finish(RetroHunt& out) const {
        out.contents = m_contents.size();
        for (const auto& [content, seen] : m_contents) {
            out.current += seen.current ? 1 : 0;
            if (seen.current) {
                continue; // scanned with this set already: its verdict says what it holds
            }
            out.compared += seen.compared ? 1 : 0;
            if (!seen.names.empty()) {
                out.hits.push_back(RetroHit{content, {seen.names.begin(), seen.names.end()}, {}});
            } else if (seen.unproven) {
                ++out.unproven;
            }
        }
    }

private:
    struct Seen {
        bool current = false;
        bool compared = false;
        bool unproven = false;
        std::set<std::string> names;
    };

    SetLineage& m_lineage;
    std::string m_set;
    const AllowListFields& m_allowed;
    std::map<std::string, std::shared_ptr<const SetChange>> m_changes;
    std::map<Sha256Digest, Seen> m_contents;
};

} // namespace

Expected<AllowListFields> allow_list_fields(const signatures::SignatureSet& signatures) {
    auto texts = signatures.line_texts_of(signatures::LineKind::allow_list);
    if (!texts) {
        return std::unexpected(texts.error());
    }
    AllowListFields out;
    for (const auto& text : *texts) {
        std::string_view rest = text.text;
        while (!rest.empty()) {
            const auto colon = rest.find(':');
            const std::string_view field = rest.substr(0, colon);
            out.fields.emplace(field);
            if (const auto digest = signatures::hash_line_digest(field)) { // a hex MD5, SHA-1 or SHA-256
                out.digests.insert(to_hex(*digest));
            }
            rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
        }
    }
    return out;
}

Expected<RetroHunt> retro_hunt(const KvStore& store, SetLineage& lineage, std::string_view detection_set,
                               const AllowListFields& allowed) {
    RetroHunt out;
    out.detection_set = detection_set;
    std::set<std::string> made_with;
    auto listed = for_each_stored_verdict(store, [&](const StoredVerdict& verdict) {
        if (verdict.made_with != detection_set) {
            made_with.insert(verdict.made_with);
        }
        return true;
    });
    if (!listed) {
        return std::unexpected(listed.error());
    }
    Hunter hunter(lineage, detection_set, allowed);
    if (auto learned = hunter.learn_changes(made_with, out); !learned) {
        return std::unexpected(learned.error());
    }
    auto walked = for_each_stored_verdict(store, [&](const StoredVerdict& verdict) {
        hunter.visit(verdict, out);
        return true;
    });
    if (!walked) {
        return std::unexpected(walked.error());
    }
    hunter.finish(out);
    std::set<Sha256Digest> hit_contents;
    for (const auto& hit : out.hits) {
        hit_contents.insert(hit.content);
    }
    auto places = places_of(store, hit_contents);
    if (!places) {
        return std::unexpected(places.error());
    }
    for (auto& hit : out.hits) {
        if (auto found = places->find(hit.content); found != places->end()) {
            hit.places = std::move(found->second);
        }
    }
    std::ranges::sort(out.from_sets);
    return out;
}

Expected<RetroHunt> retro_hunt(KvStore& store, const signatures::SignatureSet& signatures) {
    SetLineage lineage(store, [&](std::span<const signatures::CatalogueLine> wanted) {
        return signatures.line_texts(wanted);
    });
    if (auto followed = lineage.follow(signatures, system_seconds()); !followed) {
        return std::unexpected(followed.error());
    }
    auto allowed = allow_list_fields(signatures);
    if (!allowed) {
        return std::unexpected(allowed.error());
    }
    return retro_hunt(store, lineage, signatures.detection_set(), *allowed);
}

std::string retro_hunt_json(const RetroHunt& hunt) {
    using nlohmann::json;
    json hits = json::array();
    for (const auto& hit : hunt.hits) {
        json places = json::array();
        for (const auto& place : hit.places) {
            places.push_back(json{{"target", place.target},
                                  {"device", place.device},
                                  {"path", place.path},
                                  {"seen", place.seen}});
        }
        hits.push_back(
            json{{"sha256", to_hex(hit.content)}, {"signatures", hit.signatures}, {"places", places}});
    }
    const json out{{"detection_set", hunt.detection_set},
                   {"from_sets", hunt.from_sets},
                   {"hash_lines_added", hunt.hash_lines_added},
                   {"verdicts", hunt.verdicts},
                   {"contents", hunt.contents},
                   {"current", hunt.current},
                   {"compared", hunt.compared},
                   {"unproven", hunt.unproven},
                   {"hits", std::move(hits)}};
    return out.dump(2, ' ', false, json::error_handler_t::replace);
}

} // namespace coldscan::scanner
