#include "qemu_file_view.hpp"

namespace coldscan::disk::detail {

FileView qemu_file_view(const std::vector<std::filesystem::path>& read_roots,
                        const std::vector<std::filesystem::path>& private_folders) {
    FileView view = system_file_view(/*with_kvm=*/false);
    view.read.insert(view.read.end(), read_roots.begin(), read_roots.end());
    view.read_write.insert(view.read_write.end(), private_folders.begin(), private_folders.end());
    return view;
}

} // namespace coldscan::disk::detail
