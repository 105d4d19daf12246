// Owning handles for C library objects: a unique_ptr with a stateless deleter.
#pragma once

#include <memory>

namespace coldscan {

template <auto Free> struct CDeleter {
    template <typename T> void operator()(T* p) const noexcept { Free(p); }
};

template <typename T, auto Free> using CHandle = std::unique_ptr<T, CDeleter<Free>>;

} // namespace coldscan
