// Standalone Verilator harness of a UART system: the inference system (spinapse.rtl.uart_engine)
// or the training system (spinapse.rtl.uart_training); both have ports clk, rst, rx, tx, busy.
//
// Bytes read from stdin are sent to the design's `rx` pin as 8N1 frames, bit time DIVISOR
// clock cycles; frames the design sends on `tx` are decoded (sampled at the middle of each bit)
// and written to stdout. The host driver (spinapse.cosim.uart_sim) talks to this process through
// its pipes exactly as it talks to a board through a serial port. The harness waits on stdin
// (no busy loop) when it has nothing to send and the design has been quiet for a while; it exits
// when stdin is closed and the design is quiet. Counters go to stderr at exit.
#include <poll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>

#include "Vuart_system.h"
#include "verilated.h"

#ifndef DIVISOR
#error "DIVISOR (clock cycles per UART bit) must be defined"
#endif

int main(int argc, char** argv) {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vuart_system>(ctx.get());
    std::deque<uint8_t> to_dut;
    bool eof = false;
    uint64_t cycle = 0, quiet = 0, bytes_in = 0, bytes_out = 0;
    // Transmitter to the design's rx.
    int tx_bit = -1;  // -1 idle, 0 start, 1..8 data, 9 stop
    uint32_t tx_timer = 0;
    uint8_t tx_byte = 0;
    // Receiver of the design's tx.
    int rx_bit = -1;
    uint32_t rx_timer = 0;
    uint8_t rx_byte = 0;

    auto tick = [&]() {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
        ++cycle;
    };
    top->rx = 1;
    top->rst = 1;
    for (int i = 0; i < 4; ++i) tick();
    top->rst = 0;

    uint8_t buf[4096];
    for (;;) {
        // Refill from stdin: without waiting while there is work, waiting when all is quiet.
        if (!eof && to_dut.empty()) {
            bool idle = tx_bit < 0 && rx_bit < 0 && !top->busy && quiet > 64 * DIVISOR;
            struct pollfd pfd = {0, POLLIN, 0};
            if (poll(&pfd, 1, idle ? -1 : 0) > 0) {
                ssize_t n = read(0, buf, sizeof buf);
                if (n <= 0) {
                    eof = true;
                } else {
                    for (ssize_t i = 0; i < n; ++i) to_dut.push_back(buf[i]);
                    bytes_in += n;
                }
            }
        }
        if (eof && to_dut.empty() && tx_bit < 0 && rx_bit < 0 && !top->busy &&
            quiet > 64 * DIVISOR)
            break;
        for (int k = 0; k < DIVISOR; ++k) {
            // Drive rx.
            if (tx_bit < 0 && !to_dut.empty()) {
                tx_byte = to_dut.front();
                to_dut.pop_front();
                tx_bit = 0;
                tx_timer = 0;
            }
            if (tx_bit >= 0) {
                top->rx = tx_bit == 0 ? 0 : tx_bit == 9 ? 1 : (tx_byte >> (tx_bit - 1)) & 1;
                if (++tx_timer == DIVISOR) {
                    tx_timer = 0;
                    tx_bit = tx_bit == 9 ? -1 : tx_bit + 1;
                }
            } else {
                top->rx = 1;
            }
            tick();
            // Decode tx (read after the edge).
            bool line = top->tx;
            if (rx_bit < 0) {
                if (!line) {
                    rx_bit = 0;
                    rx_timer = 0;
                }
            } else if (++rx_timer == (rx_bit == 0 ? DIVISOR / 2 : DIVISOR)) {
                rx_timer = 0;
                if (rx_bit >= 1 && rx_bit <= 8) rx_byte = (rx_byte >> 1) | (line ? 0x80 : 0);
                if (rx_bit == 9) {
                    if (line) {
                        fputc(rx_byte, stdout);
                        ++bytes_out;
                    }
                    rx_bit = -1;
                } else {
                    ++rx_bit;
                }
            }
            bool active = tx_bit >= 0 || rx_bit >= 0 || top->busy;
            quiet = active ? 0 : quiet + 1;
        }
        if (quiet == 1 || to_dut.empty()) fflush(stdout);
    }
    fflush(stdout);
    top->final();
    fprintf(stderr, "cycles %llu bytes_in %llu bytes_out %llu\n", (unsigned long long)cycle,
            (unsigned long long)bytes_in, (unsigned long long)bytes_out);
    return 0;
}
