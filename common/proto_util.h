// Deterministic protobuf serialization: the same message always gives the
// same bytes in this build, which is what anything hashed or signed needs.
#pragma once

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <string>

namespace geoledger {

template <typename Message>
std::string DeterministicSerialize(const Message& msg) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream sos(&out);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    msg.SerializeToCodedStream(&cos);
  }
  return out;
}

}  // namespace geoledger
