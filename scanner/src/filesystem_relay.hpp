// Filesystems one after another, overlapped: the next filesystem's read starts once the one before has handed
// its last file to the pipeline, so that while the last (often the largest) files of one drain on some cores,
// the next one's files fill the others. Without it, an image of a small /boot and a large root waits for the
// /boot's one initrd on one core.
// Thread rule: one owner thread calls start() and finish(); each read runs on a thread of its own. At most
// two reads run at once (Pipeline takes two concurrent scans).
#pragma once

#include <deque>
#include <functional>
#include <thread>

namespace coldscan::scanner {

class FilesystemRelay {
public:
    // A read: gets the function to call once its source has handed over its last file (it may also never
    // call it: its end counts). It must not throw.
    using Read = std::function<void(const std::function<void()>& listed)>;

    FilesystemRelay() = default;
    ~FilesystemRelay() { finish(); }
    FilesystemRelay(const FilesystemRelay&) = delete;
    FilesystemRelay& operator=(const FilesystemRelay&) = delete;

    // Waits for the read before the last one to end, starts read, and returns once read's files are all
    // listed (or it ended).
    void start(Read read);
    // Waits for every read.
    void finish();

private:
    std::deque<std::thread> m_reads;
};

} // namespace coldscan::scanner
