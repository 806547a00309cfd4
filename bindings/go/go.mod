module pmem-sys/pmem

go 1.19
