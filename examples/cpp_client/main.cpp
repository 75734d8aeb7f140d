// Submitting tasks from your own C++ program with sd::client::Client.
//
//   ./build/bin/servidor & ./build/bin/worker &
//   ./build/bin/example_client [host] [port]
//
// Link against sd_client (see examples/CMakeLists.txt).

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/client.hpp"

int main(int argc, char** argv) try {
  sd::client::ConnectOptions where;
  if (argc > 1) where.host = argv[1];
  if (argc > 2) where.port = static_cast<std::uint16_t>(std::stoi(argv[2]));
  sd::client::Client client(where);  // connects now; throws ClientError if it cannot

  // One task, start to end: its result is raw JSON text.
  const sd::proto::ResultMsg hash = client.run("hash", R"({"text":"Hola Mundo"})");
  std::cout << "hash: " << (hash.ok ? hash.result : hash.error_message) << "\n";

  // Many in flight on one connection: submit them all, then collect the results.
  std::vector<std::string> ids;
  for (int n : {5, 10, 20}) {
    sd::proto::TaskMsg task;
    task.task_type = "fibonacci";
    task.task_data = R"({"n":)" + std::to_string(n) + "}";
    ids.push_back(client.submit(task));  // the client makes a unique task_id
  }
  for (const std::string& id : ids) {
    const sd::proto::ResultMsg r = client.wait_result(id, std::chrono::seconds(30));
    std::cout << id << ": " << (r.ok ? r.result : r.error_message) << "\n";
  }
  return EXIT_SUCCESS;
} catch (const sd::client::ClientError& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 2;
}
