// mlp_eval: run a bundle's policy.safetensors on a file of float32 observations.
// Used by the Python parity test (C++ core vs torch); also handy for checking a
// bundle on a robot computer without Python.
//
//   mlp_eval WEIGHTS.safetensors elu|relu|tanh INPUTS.f32 OUTPUTS.f32
//
// INPUTS.f32 holds N x input_dim float32 values (row-major, native endianness);
// OUTPUTS.f32 receives N x output_dim. Prints "sha256 <hex>" of the weights file.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "simreal_rt/file_io.hpp"
#include "simreal_rt/mlp.hpp"
#include "simreal_rt/safetensors.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: mlp_eval WEIGHTS.safetensors elu|relu|tanh INPUTS.f32 OUTPUTS.f32\n");
    return 2;
  }
  try {
    const std::vector<unsigned char> weights = simreal_rt::read_file_bytes(argv[1]);
    std::printf("sha256 %s\n", simreal_rt::sha256_hex(weights).c_str());
    const simreal_rt::Mlp mlp(simreal_rt::SafetensorsFile::from_bytes(weights), simreal_rt::parse_activation(argv[2]));
    const std::vector<unsigned char> raw = simreal_rt::read_file_bytes(argv[3]);
    const size_t row_bytes = mlp.input_dim() * sizeof(float);
    if (raw.size() % row_bytes != 0) {
      throw std::runtime_error("inputs are not a whole number of rows of " + std::to_string(mlp.input_dim()));
    }
    const size_t rows = raw.size() / row_bytes;
    std::vector<float> input(mlp.input_dim());
    std::vector<float> output(rows * mlp.output_dim());
    for (size_t r = 0; r < rows; ++r) {
      // copy instead of casting: the byte buffer carries no float alignment
      std::copy_n(raw.data() + r * row_bytes, row_bytes, reinterpret_cast<unsigned char*>(input.data()));
      mlp.evaluate(input.data(), output.data() + r * mlp.output_dim());
    }
    std::ofstream out(argv[4], std::ios::binary);
    out.write(reinterpret_cast<const char*>(output.data()), static_cast<std::streamsize>(output.size() * sizeof(float)));
    std::printf("rows %zu\n", rows);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mlp_eval: error: %s\n", error.what());
    return 1;
  }
}
