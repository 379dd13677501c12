version 1.0
# two steps: merge each 2-deep array of a 3-deep array (merge.wdl), then cut the merged files.
import "merge.wdl" as m

workflow merge_and_cut {
  input {
    Array[Array[Array[File]]] smallfiles
  }
  scatter (group in smallfiles) {
    call m.merge as merge { input: smallfiles = group }
  }
  call cut { input: files = merge.merged }
  output {
    File merged_and_cut = cut.cut_file
  }
}

task cut {
  input {
    Array[File] files
  }
  command <<<
    cut -f 1 ~{sep=" " files} > cut
  >>>
  output {
    File cut_file = "cut"
  }
  runtime {
    docker: "ubuntu:20.04"
  }
}
