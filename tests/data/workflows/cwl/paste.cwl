# paste files side by side: one line of columns per line number.
cwlVersion: v1.0
class: CommandLineTool
requirements:
  - class: DockerRequirement
    dockerPull: ubuntu:20.04
baseCommand: paste
stdout: pasted
inputs:
  files:
    type: File[]
    inputBinding:
      position: 1
outputs:
  pasted:
    type: stdout
